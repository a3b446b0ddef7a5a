"""How many audited entities a worker evaluates at once.

An audit chunk is one message but names up to ``GAVEL_AUDIT_CHUNK_SIZE`` entities, each
loaded with its last known resources. Counting chunks as messages alone would let a
worker hold ``GAVEL_WORKER_CONCURRENCY`` times that many entities in memory during a
big audit; a chunk therefore takes as many places of this budget as it has entities
(all of it, if it has more) before it loads them, and gives them back when they are
stored. Chunks get their places in the order they asked, so a big one is not passed
over forever by smaller ones.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class EvaluationBudget:
    def __init__(self, places: int) -> None:
        if places < 1:
            raise ValueError("an evaluation budget needs at least one place")
        self.places = places
        self.taken = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    @asynccontextmanager
    async def held(self, wanted: int) -> AsyncIterator[int]:
        """Hold ``wanted`` places (at most all of them) while the block runs; yields how
        many are held."""
        count = max(1, min(wanted, self.places))
        await self._take(count)
        try:
            yield count
        finally:
            self.taken -= count
            self._wake()

    async def _take(self, count: int) -> None:
        if not self._waiting and self.taken + count <= self.places:
            self.taken += count
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((count, turn))
        try:
            await turn
        except asyncio.CancelledError:
            # a waiter cancelled before its turn is passed over by _wake; one granted
            # as it was cancelled gives its places back
            if turn.done() and not turn.cancelled():
                self.taken -= count
            self._wake()
            raise

    def _wake(self) -> None:
        """Grant the waiters at the head of the line whose places are free."""
        while self._waiting:
            count, turn = self._waiting[0]
            if turn.done():
                self._waiting.popleft()
                continue
            if self.taken + count > self.places:
                return
            self._waiting.popleft()
            self.taken += count
            turn.set_result(None)
