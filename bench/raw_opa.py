"""Raw OPA: the worker's queries and inputs sent straight to OPA, nothing around them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import asyncpg

from gavel.events import StackEvent
from gavel.settings import Settings
from worker.evaluate import PackPlan
from worker.opa_runtime import OpaRuntime, PackCatalog
from worker.pipeline import rego_input, stack_entity


def base_input(event: StackEvent) -> dict[str, Any]:
    """The input document the worker builds for a stack event (before per-pack fields)."""
    return rego_input(stack_entity(event.org, event.project, event.stack), event.kind,
                      event.eventId, event.resources)


async def measure(settings: Settings, pool: asyncpg.Pool, version_ids: list[int],
                  config: dict[str, Any], events: list[StackEvent], concurrency: int,
                  timed: Callable[[], None] = lambda: None) -> float:
    """Events per second, ``concurrency`` events in flight; every pack queried per event.
    ``timed`` is called as the timed part begins and as it ends."""
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max(8, concurrency)),
            timeout=aiohttp.ClientTimeout(total=settings.opa.timeout)) as session:
        runtime = OpaRuntime(session, settings.opa.url)
        catalog = PackCatalog(pool)
        packs = [await catalog.get(v) for v in version_ids]
        plans = [PackPlan.of(p, config) for p in packs]
        inputs = [[plan.input_for(base_input(e)) for plan in plans] for e in events]
        for pack, doc in zip(packs, inputs[0], strict=True):
            await runtime.evaluate(pack, doc)  # loads the modules, as the worker's first event
        limit = asyncio.Semaphore(concurrency)

        async def one(docs: list[dict[str, Any]]) -> None:
            async with limit:
                await asyncio.gather(*(runtime.evaluate(p, d)
                                       for p, d in zip(packs, docs, strict=True)))

        timed()
        began = time.perf_counter()
        await asyncio.gather(*(one(docs) for docs in inputs))
        seconds = time.perf_counter() - began
        timed()
        return len(events) / seconds
