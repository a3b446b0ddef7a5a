"""Organizations and their tokens."""

from __future__ import annotations

import uuid
from typing import Literal

from aiohttp import web
from pydantic import Field

from api.domain_errors import domain_errors
from api.errors import BadRequest
from api.json import Body, json_response, parse_body
from api.keys import POOL, TOKEN_CACHE, principal
from gavel import tokens
from gavel.tokens import issue_token


class NewToken(Body):
    role: Literal["admin", "member", "ingest"]
    description: str = Field(default="", max_length=500)


async def get_org(request: web.Request) -> web.Response:
    me = principal(request)
    return json_response({"name": me.org_name})


async def create_token(request: web.Request) -> web.Response:
    body: NewToken = await parse_body(request, NewToken)
    me = principal(request)
    async with request.app[POOL].acquire() as conn:
        token_id, value = await issue_token(conn, me.org_id, body.role, body.description)
    return json_response({"id": str(token_id), "role": body.role,
                          "description": body.description, "token": value}, status=201)


async def list_tokens(request: web.Request) -> web.Response:
    rows = await request.app[POOL].fetch(
        """SELECT id, role, description, created_at FROM tokens
           WHERE org_id = $1 AND revoked_at IS NULL ORDER BY created_at""",
        principal(request).org_id)
    return json_response({"tokens": [
        {"id": str(r["id"]), "role": r["role"], "description": r["description"],
         "createdAt": r["created_at"].isoformat()} for r in rows]})


@domain_errors
async def revoke_token(request: web.Request) -> web.Response:
    try:
        token_id = uuid.UUID(request.match_info["token_id"])
    except ValueError:
        raise BadRequest("token id: not a valid UUID") from None
    async with request.app[POOL].acquire() as conn:
        await tokens.revoke_token(conn, principal(request).org_id, token_id)
    # this process forgets it now; the others when the change's notification arrives
    request.app[TOKEN_CACHE].forget(token_id)
    return web.Response(status=204)
