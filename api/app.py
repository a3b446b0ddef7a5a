"""``create_app(settings)``: the aiohttp application and the resources it owns."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from api.audit_planner import AuditPlanner
from api.auth import auth_middleware
from api.background import background
from api.eager_publisher import EagerPublisher
from api.errors import error_middleware
from api.evaluation_waiters import notifications
from api.keys import EAGER_PUBLISHER, OPA, OPA_CHECK, POOL, SETTINGS
from api.outbox_relay import OutboxRelay
from api.retention_job import RetentionJob
from api.routes import setup_routes
from gavel.db import create_pool
from gavel.opa import opa_client
from gavel.settings import Settings


async def _postgres(app: web.Application) -> AsyncIterator[None]:
    app[POOL] = await create_pool(app[SETTINGS].database)
    yield
    await app[POOL].close()


async def _eager_publisher(app: web.Application) -> AsyncIterator[None]:
    publisher = EagerPublisher(app[POOL], app[SETTINGS].kafka)
    app[EAGER_PUBLISHER] = publisher
    async with background(publisher.run(), "eager-publisher"):
        yield


async def _opa(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS].opa
    async with contextlib.AsyncExitStack() as clients:
        app[OPA] = await clients.enter_async_context(opa_client(settings))
        app[OPA_CHECK] = app[OPA] if settings.checks_url == settings.url else \
            await clients.enter_async_context(opa_client(settings, settings.checks_url))
        yield


async def _outbox_relay(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    relay = OutboxRelay(settings.database.url, settings.kafka)
    async with background(relay.run(), "outbox-relay"):
        yield


async def _audit_planner(app: web.Application) -> AsyncIterator[None]:
    async with background(AuditPlanner(app[POOL], app[SETTINGS]).run(), "audit-planner"):
        yield


async def _retention(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    results = settings.results
    assert results.retention_days is not None
    job = RetentionJob(app[POOL], settings.database.url, timedelta(days=results.retention_days),
                       results.retention_interval, results.retention_batch)
    async with background(job.run(), "retention"):
        yield


def create_app(settings: Settings, *, with_relay: bool = True) -> web.Application:
    app = web.Application(middlewares=[error_middleware, auth_middleware],
                          client_max_size=settings.http.max_body_bytes)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_postgres)
    app.cleanup_ctx.append(_opa)
    app.cleanup_ctx.append(_eager_publisher)
    app.cleanup_ctx.append(notifications)
    if with_relay:
        app.cleanup_ctx.append(_outbox_relay)
        app.cleanup_ctx.append(_audit_planner)
    if settings.results.retention_days is not None:
        app.cleanup_ctx.append(_retention)
    setup_routes(app)
    return app
