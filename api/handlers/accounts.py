"""Insights-style cloud accounts."""

from __future__ import annotations

from aiohttp import web

from api.domain_errors import domain_errors
from api.json import json_response, parse_body
from api.keys import POOL, SETTINGS, principal
from api.paging import paging_fields, requested_page
from api.query_params import check_known
from gavel import insights_accounts
from gavel.insights_accounts import NewInsightsAccount


@domain_errors
async def create_account(request: web.Request) -> web.Response:
    body: NewInsightsAccount = await parse_body(request, NewInsightsAccount)
    account = await insights_accounts.create_account(request.app[POOL],
                                                     principal(request).org_id, body)
    return json_response(account, status=201)


async def list_accounts(request: web.Request) -> web.Response:
    check_known(request, (), sortable=False)
    page = requested_page(request)
    accounts, total = await insights_accounts.list_accounts(
        request.app[POOL], principal(request).org_id, page.offset, page.size)
    return json_response({"accounts": accounts, **paging_fields(request, page, total)})


@domain_errors
async def get_account(request: web.Request) -> web.Response:
    account = await insights_accounts.get_account(request.app[POOL], principal(request).org_id,
                                                  request.match_info["name"])
    return json_response(account)


@domain_errors
async def delete_account(request: web.Request) -> web.Response:
    await insights_accounts.delete_account(
        request.app[POOL], principal(request).org_id, request.match_info["name"],
        request.app[SETTINGS].kafka.topic_group_changes)
    return web.Response(status=204)
