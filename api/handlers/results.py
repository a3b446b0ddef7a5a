"""Querying results: evaluation history, current violations (ours and Pulumi's shape),
and the compliance summary. Every list pages with ``page[number]``/``page[size]``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.auth import access
from api.json import json_response
from api.keys import POOL, principal
from api.paging import Page, paging_fields, requested_page
from api.query_params import (
    Parser,
    boolean,
    check_known,
    one_of,
    parse_filters,
    parse_sort,
    text,
    timestamp,
    uuid_text,
)
from gavel import compliance, result_queries
from gavel.result_queries import ENTITY_TYPES, KINDS, LEVELS, OUTCOMES, STATUSES

VIOLATION_FILTERS: dict[str, Parser] = {
    "entity": text, "entityType": one_of(*ENTITY_TYPES), "group": text, "pack": text,
    "policy": text, "level": one_of(*LEVELS), "urn": text,
}
EVALUATION_FILTERS: dict[str, Parser] = {
    "entity": text, "entityType": one_of(*ENTITY_TYPES), "kind": one_of(*KINDS),
    "outcome": one_of(*OUTCOMES), "status": one_of(*STATUSES), "blocking": boolean,
    "since": timestamp, "until": timestamp, "audit": uuid_text,
}
COMPLIANCE_FILTERS: dict[str, Parser] = {
    "entityType": one_of(*ENTITY_TYPES), "group": text, "pack": text,
}


@access("read")
async def list_evaluations(request: web.Request) -> web.Response:
    check_known(request, EVALUATION_FILTERS, sortable=False)
    filters = parse_filters(request, EVALUATION_FILTERS)
    page, me = requested_page(request), principal(request)
    query = result_queries.evaluation_query(me.org_id, filters)
    found = await result_queries.fetch_page(request.app[POOL], query, page.offset, page.size)
    return json_response({
        "evaluations": [result_queries.evaluation_summary(r, me.org_name) for r in found.rows],
        **_paging(request, page, found.total, found.exact)})


def _paging(request: web.Request, page: Page, total: int, exact: bool) -> dict[str, Any]:
    fields = paging_fields(request, page, total)
    # past EXACT_COUNT_LIMIT matches the total is the planner's estimate
    fields["meta"]["page"]["total_estimated"] = not exact
    return fields


async def _current_violations(request: web.Request) -> tuple[list[Any], dict[str, Any]]:
    check_known(request, VIOLATION_FILTERS, sortable=True)
    filters = parse_filters(request, VIOLATION_FILTERS)
    sort = parse_sort(request, result_queries.VIOLATION_SORTS)
    page = requested_page(request)
    query = result_queries.violation_query(principal(request).org_id, filters, sort)
    found = await result_queries.fetch_page(request.app[POOL], query, page.offset, page.size)
    return found.rows, _paging(request, page, found.total, found.exact)


@access("read")
async def list_violations(request: web.Request) -> web.Response:
    rows, paging = await _current_violations(request)
    org = principal(request).org_name
    return json_response({"violations": [result_queries.violation_view(r, org) for r in rows],
                          **paging})


@access("read")
async def pulumi_violations(request: web.Request) -> web.Response:
    rows, paging = await _current_violations(request)
    return json_response({
        "policyViolations": [result_queries.pulumi_violation_view(r) for r in rows], **paging})


@access("read")
async def get_compliance(request: web.Request) -> web.Response:
    check_known(request, COMPLIANCE_FILTERS, sortable=False)
    filters = parse_filters(request, COMPLIANCE_FILTERS)
    page = requested_page(request)
    packs, groups, total = await compliance.compliance(
        request.app[POOL], principal(request).org_id, filters, page.offset, page.size)
    return json_response({"packs": packs, "groups": groups,
                          **_paging(request, page, total, exact=True)})
