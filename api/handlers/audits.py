"""Audit scans: start one, follow its progress, list them."""

from __future__ import annotations

import uuid

from aiohttp import web
from pydantic import Field

from api.domain_errors import domain_errors
from api.errors import NotFound
from api.json import Body, json_response, parse_body
from api.keys import POOL, principal
from api.paging import paging_fields, requested_page
from api.query_params import check_known, one_of, parse_filters
from gavel import audits
from gavel.policy_groups import find_group

STATUSES = ("queued", "running", "completed", "failed")
AUDIT_FILTERS = {"status": one_of(*STATUSES)}


class NewAudit(Body):
    # the one group to audit; without it, every audit-mode group of the org
    policyGroup: str | None = Field(default=None, min_length=1, max_length=200)


async def _body(request: web.Request) -> NewAudit:
    if not request.can_read_body:
        return NewAudit()
    return await parse_body(request, NewAudit)


@domain_errors
async def start_audit(request: web.Request) -> web.Response:
    body = await _body(request)
    org_id = principal(request).org_id
    async with request.app[POOL].acquire() as conn, conn.transaction():
        if body.policyGroup is None:
            target, name = audits.ORG_TARGET, None
        else:
            group = await find_group(conn, org_id, body.policyGroup)
            target, name = audits.group_target(group.id), group.name
        audit_id, _ = await audits.request_audit(conn, org_id, target=target, trigger="manual",
                                                 delay=0, policy_group=name)
    return json_response({"id": str(audit_id)}, status=202)


async def get_audit(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    try:
        audit_id = uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"Audit '{raw[:100]}' not found") from None
    document = await audits.get_audit(request.app[POOL], principal(request).org_id, audit_id)
    if document is None:
        raise NotFound(f"Audit '{audit_id}' not found")
    return json_response(document)


async def list_audits(request: web.Request) -> web.Response:
    check_known(request, AUDIT_FILTERS, sortable=False)
    filters = parse_filters(request, AUDIT_FILTERS)
    page = requested_page(request)
    items, total = await audits.list_audits(request.app[POOL], principal(request).org_id,
                                            status=filters.get("status"), offset=page.offset,
                                            limit=page.size)
    return json_response({"audits": items, **paging_fields(request, page, total)})
