"""Long-poll support: one LISTEN connection wakes the requests waiting on evaluations."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from api.keys import SETTINGS

CHANNEL = "gavel_evaluation"


class EvaluationWaiters:
    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Future[None]]] = defaultdict(set)

    def notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        for future in self._waiting.pop(payload, ()):
            if not future.done():
                future.set_result(None)

    @contextlib.contextmanager
    def waiter(self, evaluation_id: str) -> asyncio.Future[None]:  # type: ignore[misc]
        """Register before re-reading the row, so a notification cannot slip between."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[evaluation_id].add(future)
        try:
            yield future
        finally:
            waiting = self._waiting.get(evaluation_id)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del self._waiting[evaluation_id]


WAITERS = web.AppKey("evaluation_waiters", EvaluationWaiters)


async def evaluation_waiters(app: web.Application) -> AsyncIterator[None]:
    waiters = EvaluationWaiters()
    app[WAITERS] = waiters
    conn = await asyncpg.connect(app[SETTINGS].database.url)
    await conn.add_listener(CHANNEL, waiters.notify)
    yield
    with contextlib.suppress(Exception):
        await conn.close()
