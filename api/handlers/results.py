"""Querying results: evaluation history, current violations (ours and Pulumi's shape),
and the compliance summary. Every list pages with ``page[number]``/``page[size]``; the
evaluations and violations also continue by sort key through the ``page[after]`` and
``page[before]`` tokens of their ``next`` and ``prev`` links."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.auth import access
from api.json import json_response
from api.keys import POOL, principal
from api.page_tokens import AFTER, BEFORE, ListIdentity, encode, requested_continuation
from api.paging import Page, last_number, paging_fields, requested_page
from api.query_params import (
    Parser,
    boolean,
    check_known,
    entity,
    one_of,
    parse_filters,
    parse_sort,
    text,
    timestamp,
    uuid_text,
)
from gavel import compliance, result_pages, result_queries
from gavel.result_pages import ResultPage
from gavel.result_queries import (
    ENTITY_TYPES,
    KINDS,
    LEVELS,
    OUTCOMES,
    STATUSES,
    PagedQuery,
    Seek,
)

VIOLATION_FILTERS: dict[str, Parser] = {
    "entity": entity, "entityType": one_of(*ENTITY_TYPES), "group": text, "pack": text,
    "policy": text, "level": one_of(*LEVELS), "urn": text,
}
EVALUATION_FILTERS: dict[str, Parser] = {
    "entity": entity, "entityType": one_of(*ENTITY_TYPES), "kind": one_of(*KINDS),
    "outcome": one_of(*OUTCOMES), "status": one_of(*STATUSES), "blocking": boolean,
    "since": timestamp, "until": timestamp, "audit": uuid_text,
}
COMPLIANCE_FILTERS: dict[str, Parser] = {
    "entityType": one_of(*ENTITY_TYPES), "group": text, "pack": text,
}


@access("read")
async def list_evaluations(request: web.Request) -> web.Response:
    check_known(request, EVALUATION_FILTERS, sortable=False, continuable=True)
    filters = parse_filters(request, EVALUATION_FILTERS)
    me = principal(request)
    query = result_queries.evaluation_query(me.org_id, filters)
    rows, paging = await _page(request, query, ListIdentity.of("evaluations", (), filters))
    return json_response({
        "evaluations": [result_queries.evaluation_summary(r, me.org_name) for r in rows],
        **paging})


async def _page(request: web.Request, query: PagedQuery,
                identity: ListIdentity) -> tuple[list[Any], dict[str, Any]]:
    """The requested page (from its number, or seeking from its token) with its links."""
    page = requested_page(request)
    continuation = requested_continuation(request, page, identity)
    seek = None
    if continuation is not None and continuation.before and not continuation.key:
        seek = Seek.end()
    elif continuation is not None:
        try:
            seek = Seek(query.order.decode_key(continuation.key), continuation.before)
        except ValueError as exc:
            raise continuation.refused(f"the token's sort key {exc}") from None
    found = await result_pages.fetch_page(request.app[POOL], query, page.offset, page.size,
                                          seek)
    return found.rows, _paging(request, page, found, query, identity)


def _paging(request: web.Request, page: Page, found: ResultPage, query: PagedQuery,
            identity: ListIdentity) -> dict[str, Any]:
    # the last page is read backwards from the end of the list (an empty key)
    end = (last_number(found.total, page.size) + 1) * page.size
    tokens: dict[str, str | None] = {"last": encode(identity, BEFORE, end, [])}
    if found.rows:
        tokens["next"] = encode(identity, AFTER, page.offset + page.size,
                                query.order.key_of(found.rows[-1]))
        # page 0's prev link (rows before it: an estimated total numbered too low) is
        # page 0 again
        tokens["prev"] = encode(identity, BEFORE, max(page.offset, page.size),
                                query.order.key_of(found.rows[0]))
    fields = paging_fields(request, page, found.total, tokens, found.rows_before)
    # past result_pages.EXACT_COUNT_LIMIT matches the total is the planner's estimate
    fields["meta"]["page"]["total_estimated"] = not found.exact
    return fields


async def _current_violations(request: web.Request) -> tuple[list[Any], dict[str, Any]]:
    check_known(request, VIOLATION_FILTERS, sortable=True, continuable=True)
    filters = parse_filters(request, VIOLATION_FILTERS)
    sort = parse_sort(request, result_queries.VIOLATION_SORTS)
    query = result_queries.violation_query(principal(request).org_id, filters, sort)
    return await _page(request, query, ListIdentity.of("violations", sort, filters))


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
    paging = paging_fields(request, page, total)
    paging["meta"]["page"]["total_estimated"] = False
    return json_response({"packs": packs, "groups": groups, **paging})
