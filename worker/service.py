"""The worker process: owns its resources and runs until told to stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import aiohttp
from aiokafka.structs import ConsumerRecord

from gavel.db import pool_context
from gavel.kafka import ensure_topics, make_consumer
from gavel.settings import Settings
from worker.audit_chunks import AuditChunks
from worker.consumer import EvaluationLoop
from worker.dead_letters import DeadLetters
from worker.evaluate import Evaluator
from worker.evaluation_budget import EvaluationBudget
from worker.group_sync import GroupSync
from worker.index import GroupIndex
from worker.metrics_server import metrics_server
from worker.opa_runtime import OpaRuntime, OpaUnavailable, PackCatalog
from worker.pipeline import Pipeline
from worker.publisher import Publisher

log = logging.getLogger(__name__)


@asynccontextmanager
async def _started(component: object) -> AsyncIterator[None]:
    await component.start()  # type: ignore[attr-defined]
    try:
        yield
    finally:
        await component.stop()  # type: ignore[attr-defined]


async def _opa_version(runtime: OpaRuntime, stop: asyncio.Event) -> str:
    delay = 0.5
    while True:
        try:
            return await runtime.fetch_version()
        except OpaUnavailable as exc:
            if stop.is_set():
                raise
            log.warning("%s; waiting %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5)


async def _inherit_loaded(runtime: OpaRuntime) -> None:
    try:
        count = await runtime.inherit_loaded()
    except OpaUnavailable as exc:
        log.warning("could not list OPA's policies (%s); pack versions loaded by an "
                    "earlier worker stay in OPA", exc)
        return
    if count:
        log.info("OPA holds %d pack versions loaded earlier; they are removed first", count)


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    await ensure_topics(settings.kafka)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(metrics_server(settings.worker.metrics_port))
        pool = await stack.enter_async_context(pool_context(settings.database))
        session = await stack.enter_async_context(aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max(8, settings.worker.concurrency)),
            timeout=aiohttp.ClientTimeout(total=settings.opa.timeout)))
        runtime = OpaRuntime(session, settings.opa.url, settings.opa.max_pack_versions)
        opa_version = await _opa_version(runtime, stop)
        await _inherit_loaded(runtime)
        publisher = Publisher(settings.kafka)
        await stack.enter_async_context(_started(publisher))
        groups = GroupSync(pool, settings.kafka, GroupIndex())
        await stack.enter_async_context(_started(groups))
        consumer = make_consumer(
            settings.kafka, group_id=settings.kafka.consumer_group,
            max_poll_records=settings.worker.concurrency * 2,
            session_timeout_ms=30000, heartbeat_interval_ms=3000)
        await stack.enter_async_context(_started(consumer))
        pipeline = Pipeline(settings, pool, publisher, groups,
                            Evaluator(PackCatalog(pool), runtime, settings.opa.max_requests,
                                      settings.opa.batch_size),
                            DeadLetters(pool, publisher, settings.kafka.topic_dead_letter,
                                        settings.kafka.max_message_bytes),
                            opa_version)
        kafka = settings.kafka
        audit_chunks = AuditChunks(pool, pipeline,
                                   EvaluationBudget(settings.worker.concurrency))
        handlers = {kafka.topic_stack_events: pipeline.handle,
                    kafka.topic_account_events: pipeline.handle,
                    kafka.topic_audit_chunks: audit_chunks.handle}

        async def route(message: ConsumerRecord) -> None:
            await handlers[message.topic](message)

        async def give_up(message: ConsumerRecord, error: str) -> None:
            if message.topic == kafka.topic_audit_chunks:
                await audit_chunks.give_up(message, error)
            else:
                await pipeline.give_up(message, error)

        loop = EvaluationLoop(consumer, list(handlers), route, give_up,
                              settings.worker.concurrency, settings.worker.shutdown_timeout)
        log.info("worker started (OPA %s, concurrency %d, at most %s pack versions loaded)",
                 opa_version, settings.worker.concurrency,
                 settings.opa.max_pack_versions or "unlimited")
        await loop.run(stop)
