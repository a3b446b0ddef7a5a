"""Long-poll support and cache invalidation: one LISTEN connection per API process
wakes the requests waiting on evaluations and empties the token cache.

A notification can be lost (the LISTEN connection dropped and reconnecting), so every
SWEEP_SECONDS one query looks up which of the evaluations still waited on have
finished and wakes their requests. The cost stays one query per sweep however many
requests wait: when each request re-read its own row every few seconds, a backlog of
thousands of waiting requests became more reads than new events, and an overloaded
API fell further behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from api.background import background
from api.keys import POOL, SETTINGS, TOKEN_CACHE
from gavel.evaluations import FINISHED_CHANNEL
from gavel.tokens import TOKENS_CHANNEL, TokenCache

log = logging.getLogger(__name__)
SWEEP_SECONDS = 3.0
_FINISHED = "SELECT id FROM evaluations WHERE id = ANY($1::uuid[]) AND status = 'finished'"


class EvaluationWaiters:
    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Future[None]]] = defaultdict(set)

    def notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.wake(payload)

    def wake(self, evaluation_id: str) -> None:
        for future in self._waiting.pop(evaluation_id, ()):
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

    async def sweep(self, db: asyncpg.Pool | asyncpg.Connection) -> None:
        """Wake the requests whose evaluation has finished, notified or not."""
        ids = [uuid.UUID(evaluation_id) for evaluation_id in self._waiting]
        if not ids:
            return
        for row in await db.fetch(_FINISHED, ids):
            self.wake(str(row["id"]))


WAITERS = web.AppKey("evaluation_waiters", EvaluationWaiters)


class _Listener:
    """The LISTEN connection, connected again when it is lost."""

    def __init__(self, url: str, waiters: EvaluationWaiters, tokens: TokenCache) -> None:
        self._url = url
        self._waiters = waiters
        self._tokens = tokens
        self._conn: asyncpg.Connection | None = None

    async def connect(self) -> None:
        conn = await asyncpg.connect(self._url)
        await conn.add_listener(FINISHED_CHANNEL, self._waiters.notify)
        await conn.add_listener(TOKENS_CHANNEL, self._tokens.clear)
        self._conn = conn

    async def watch(self, pool: asyncpg.Pool) -> None:
        """Every SWEEP_SECONDS, until cancelled: reconnect if the connection was lost
        (then forget the cached tokens, whose revocations may have gone unheard), and
        sweep the waiting requests."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                if self._conn is None or self._conn.is_closed():
                    await self.connect()
                    self._tokens.clear()
                    log.info("listening for finished evaluations and token changes again")
                await self._waiters.sweep(pool)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("evaluation waiters: %r (trying again in %.0f s)", exc,
                            SWEEP_SECONDS)

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()


async def notifications(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    waiters = EvaluationWaiters()
    tokens = TokenCache(settings.http.token_cache_seconds)
    app[WAITERS] = waiters
    app[TOKEN_CACHE] = tokens
    listener = _Listener(settings.database.url, waiters, tokens)
    await listener.connect()
    try:
        async with background(listener.watch(app[POOL]), "evaluation-waiters"):
            yield
    finally:
        await listener.close()
