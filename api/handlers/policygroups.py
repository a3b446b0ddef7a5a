"""Policy groups, in the Pulumi Cloud dialect (v2 of its REST docs)."""

from __future__ import annotations

from aiohttp import web

from api.domain_errors import domain_errors
from api.json import json_response, parse_body
from api.keys import POOL, SETTINGS, principal
from gavel import group_updates, policy_groups
from gavel.group_metadata import policy_group_metadata
from gavel.policy_group_models import BatchUpdate, NewPolicyGroup, PolicyGroupUpdate


def _topic(request: web.Request) -> str:
    return request.app[SETTINGS].kafka.topic_group_changes


def _audit_delay(request: web.Request) -> float:
    return request.app[SETTINGS].audit.coalesce_seconds


async def list_groups(request: web.Request) -> web.Response:
    groups = await policy_groups.list_summaries(request.app[POOL], principal(request).org_id)
    return json_response({"policyGroups": groups})


@domain_errors
async def create_group(request: web.Request) -> web.Response:
    body: NewPolicyGroup = await parse_body(request, NewPolicyGroup)
    await policy_groups.create_group(request.app[POOL], principal(request).org_id, body,
                                     _topic(request))
    return web.Response(status=204)


@domain_errors
async def get_group(request: web.Request) -> web.Response:
    group = await policy_groups.get_group(request.app[POOL], principal(request).org_id,
                                          request.match_info["group"])
    return json_response(group)


@domain_errors
async def update_group(request: web.Request) -> web.Response:
    body: PolicyGroupUpdate = await parse_body(request, PolicyGroupUpdate)
    await group_updates.update_group(request.app[POOL], principal(request).org_id,
                                     request.match_info["group"], [body], _topic(request),
                                     audit_delay=_audit_delay(request))
    return web.Response(status=204)


@domain_errors
async def batch_update_group(request: web.Request) -> web.Response:
    body: list[PolicyGroupUpdate] = await parse_body(request, BatchUpdate)
    await group_updates.update_group(request.app[POOL], principal(request).org_id,
                                     request.match_info["group"], body, _topic(request),
                                     batch=True, audit_delay=_audit_delay(request))
    return web.Response(status=204)


@domain_errors
async def delete_group(request: web.Request) -> web.Response:
    await policy_groups.delete_group(request.app[POOL], principal(request).org_id,
                                     request.match_info["group"], _topic(request))
    return web.Response(status=204)


async def metadata(request: web.Request) -> web.Response:
    return json_response(await policy_group_metadata(request.app[POOL],
                                                     principal(request).org_id))
