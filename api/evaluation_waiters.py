"""Long-poll support and cache invalidation: one LISTEN connection per API process
wakes the requests waiting on evaluations and empties the token cache."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from api.keys import SETTINGS, TOKEN_CACHE
from gavel.evaluations import FINISHED_CHANNEL
from gavel.tokens import TOKENS_CHANNEL, TokenCache


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


async def notifications(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    waiters = EvaluationWaiters()
    tokens = TokenCache(settings.http.token_cache_seconds)
    app[WAITERS] = waiters
    app[TOKEN_CACHE] = tokens
    conn = await asyncpg.connect(settings.database.url)
    await conn.add_listener(FINISHED_CHANNEL, waiters.notify)
    await conn.add_listener(TOKENS_CHANNEL, tokens.clear)
    yield
    with contextlib.suppress(Exception):
        await conn.close()
