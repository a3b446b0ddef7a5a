"""Token authentication and per-route access.

Every ``/api`` route needs ``Authorization: token <value>``. Reads are open to
``admin`` and ``member``, writes to ``admin``; routes marked ``ingest`` accept
``admin`` and ``ingest`` tokens, and those marked ``outcome`` (an evaluation, by the id
its event was answered with, which a CI gate waits on) every role. A token never
sees another organization: such
requests answer 404 exactly as for an organization that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from aiohttp import web
from aiohttp.typedefs import Handler

from api.errors import Forbidden, NotFound, Unauthorized
from api.keys import POOL, PRINCIPAL, TOKEN_CACHE

Access = Literal["read", "write", "ingest", "outcome"]
_ALLOWED: dict[Access, frozenset[str]] = {
    "read": frozenset({"admin", "member"}),
    "write": frozenset({"admin"}),
    "ingest": frozenset({"admin", "ingest"}),
    "outcome": frozenset({"admin", "member", "ingest"}),
}
_ACCESS_ATTR = "__gavel_access__"


def access(level: Access) -> Callable[[Handler], Handler]:
    """Mark a handler's access level (default: read for GET, write otherwise)."""

    def mark(handler: Handler) -> Handler:
        setattr(handler, _ACCESS_ATTR, level)
        return handler

    return mark


def org_not_found(org: str) -> NotFound:
    return NotFound(f"Organization '{org}' not found")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/api/") or request.path == "/api/openapi.json":
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() not in ("token", "bearer") or not value.strip():
        raise Unauthorized("missing or malformed Authorization header; "
                           "expected 'Authorization: token <value>'")
    found = await request.app[TOKEN_CACHE].authenticate(request.app[POOL], value.strip())
    if found is None:
        raise Unauthorized("invalid or revoked token")
    org = request.match_info.get("org")
    if org is not None and org != found.org_name:
        raise org_not_found(org)
    route_handler = request.match_info.handler
    default: Access = "read" if request.method in ("GET", "HEAD") else "write"
    level: Access = getattr(route_handler, _ACCESS_ATTR, default)
    if found.role not in _ALLOWED[level]:
        raise Forbidden(f"a token with role '{found.role}' may not {request.method} "
                        f"{request.path}")
    request[PRINCIPAL] = found
    return await handler(request)
