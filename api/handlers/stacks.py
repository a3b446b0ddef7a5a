"""Stacks: registration, reading, and the policy groups that apply to them."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from api.domain_errors import domain_errors
from api.errors import BadRequest
from api.json import Body, json_response, parse_body
from api.keys import POOL, principal
from api.paging import paging_fields, requested_page
from api.query_params import check_known
from gavel import inventory
from gavel.entity_names import name_problem
from gavel.evaluations import latest_evaluation
from gavel.events import Resource


class StackRegistration(Body):
    # None keeps the last known resources; a list replaces them.
    resources: list[Resource] | None = Field(default=None, max_length=100_000)


def _stack_path(request: web.Request) -> tuple[str, str]:
    project, stack = request.match_info["project"], request.match_info["stack"]
    for field, value in (("project", project), ("stack", stack)):
        problem = name_problem(value)
        if problem:
            raise BadRequest(f"{field}: {problem}")
    return project, stack


async def _registration(request: web.Request) -> StackRegistration:
    if not request.can_read_body:
        return StackRegistration()
    return await parse_body(request, StackRegistration)


async def register_stack(request: web.Request) -> web.Response:
    project, name = _stack_path(request)
    body = await _registration(request)
    resources = (None if body.resources is None
                 else [r.model_dump(mode="json") for r in body.resources])
    pool, org_id = request.app[POOL], principal(request).org_id
    created = await inventory.register_stack(pool, org_id, project, name, resources)
    row = await inventory.find_stack(pool, org_id, project, name)
    return json_response(inventory.stack_view(row), status=201 if created else 200)


@domain_errors
async def get_stack(request: web.Request) -> web.Response:
    project, name = _stack_path(request)
    pool, me = request.app[POOL], principal(request)
    row = await inventory.find_stack(pool, me.org_id, project, name)
    groups = await inventory.stack_groups(pool, me.org_id, row["id"])
    return json_response({"orgName": me.org_name, **inventory.stack_view(row),
                          "resources": row["resources"], "policyGroups": groups,
                          "lastEvaluation": await latest_evaluation(
                              pool, me.org_id, me.org_name, "stack", f"{project}/{name}")})


@domain_errors
async def stack_policy_groups(request: web.Request) -> web.Response:
    project, name = _stack_path(request)
    pool, org_id = request.app[POOL], principal(request).org_id
    row = await inventory.find_stack(pool, org_id, project, name)
    return json_response({"policyGroups": await inventory.stack_groups(pool, org_id,
                                                                       row["id"])})


async def list_stacks(request: web.Request) -> web.Response:
    check_known(request, (), sortable=False)
    page = requested_page(request)
    stacks, total = await inventory.list_stacks(request.app[POOL], principal(request).org_id,
                                                page.offset, page.size)
    return json_response({"stacks": stacks, **paging_fields(request, page, total)})
