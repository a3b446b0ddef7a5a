"""Group the finished evaluations of concurrent messages into few transactions.

Each message's task hands its evaluation to ``store`` and waits for its own result;
writers take whatever has queued up meanwhile (up to ``max_batch``), so under load a
handful of round trips stores dozens of evaluations, and alone an evaluation is
written at once. A failing batch is retried one evaluation at a time, so one bad
evaluation fails only its own message.

Each writer has a lane of its own, and every evaluation of one entity goes to the same
lane. Storing takes the row lock of the entity's latest evaluation until commit
(``worker.store``), so two writers holding batches with a common entity would take
turns: the second waits on the first's whole transaction. With a lane per writer they
only meet on the org-wide counts, written last.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

import asyncpg

from worker.drainers import Drainers
from worker.store import Finished, store_batch

log = logging.getLogger(__name__)
_Waiting = tuple[Finished, asyncio.Future[datetime | None]]


class _Lane:
    """The queue of one writer, which ``write`` empties."""

    def __init__(self, write: Callable[[list[_Waiting]], Coroutine[Any, Any, None]]) -> None:
        self.queue: list[_Waiting] = []
        self.writer = Drainers(1, lambda: write(self.queue))


class StoreBatcher:
    def __init__(self, pool: asyncpg.Pool, max_batch: int = 64, writers: int = 2) -> None:
        self._pool = pool
        self._max_batch = max_batch
        self._lanes = [_Lane(self._write_queued) for _ in range(writers)]

    async def store(self, done: Finished) -> datetime | None:
        """The evaluation's finish time; None when it had been stored before."""
        future: asyncio.Future[datetime | None] = asyncio.get_running_loop().create_future()
        lane = self._lanes[hash((done.org_id, done.entity_type, done.entity_key))
                           % len(self._lanes)]
        lane.queue.append((done, future))
        lane.writer.wake()
        return await asyncio.shield(future)

    @property
    def writing(self) -> int:
        """Writers that have not ended."""
        return sum(lane.writer.running for lane in self._lanes)

    async def _write_queued(self, queue: list[_Waiting]) -> None:
        while queue:
            batch = queue[:self._max_batch]
            del queue[:self._max_batch]
            try:
                await self._write(batch)
            except Exception:
                for waiting in batch:
                    await self._write_one(waiting)

    async def _write(self, batch: list[_Waiting]) -> None:
        async with self._pool.acquire() as conn:
            stored = await store_batch(conn, [done for done, _ in batch])
        _resolve(batch, stored)

    async def _write_one(self, waiting: _Waiting) -> None:
        try:
            await self._write([waiting])
        except Exception as exc:
            if not waiting[1].done():
                waiting[1].set_exception(exc)


def _resolve(batch: list[_Waiting], stored: dict[uuid.UUID, datetime]) -> None:
    # an evaluation delivered twice at once is new for the first waiter only
    fresh = dict(stored)
    for done, future in batch:
        if not future.done():
            future.set_result(fresh.pop(done.evaluation_id, None))
