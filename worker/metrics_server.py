"""A worker started alone serves ``/metrics`` on 127.0.0.1 (``GAVEL_WORKER_METRICS_PORT``).

Loopback only: the endpoint has no token, and a Prometheus agent on the same host
(or a sidecar in the same pod) scrapes it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from gavel.metrics import CONTENT_TYPE, render

log = logging.getLogger(__name__)
HOST = "127.0.0.1"


async def _metrics(_request: web.Request) -> web.Response:
    response = web.Response(body=render(with_database=False))
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


@asynccontextmanager
async def metrics_server(port: int) -> AsyncIterator[None]:
    """Serve ``/metrics`` while the context is open; port 0 serves nothing."""
    if port == 0:
        yield
        return
    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, HOST, port).start()
        log.info("worker metrics on http://%s:%d/metrics", HOST, port)
        yield
    finally:
        await runner.cleanup()
