"""``GET /metrics``: Prometheus text format, without a token (Prometheus convention;
the API listens on loopback unless configured otherwise)."""

from __future__ import annotations

from aiohttp import web

from api.keys import POOL
from gavel.metrics import CONTENT_TYPE, refresh_database_gauges, render


async def metrics(request: web.Request) -> web.Response:
    await refresh_database_gauges(request.app[POOL])
    response = web.Response(body=render(with_database=True))
    # aiohttp refuses a charset inside content_type, so set the header as Prometheus gives it
    response.headers["Content-Type"] = CONTENT_TYPE
    return response
