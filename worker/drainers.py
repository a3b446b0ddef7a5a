"""Up to N tasks that empty a queue: started as work is queued, each ending once it
finds the queue empty."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any


class Drainers:
    def __init__(self, limit: int, drain: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._limit = limit
        self._drain = drain
        self._tasks: list[asyncio.Task[None]] = []

    def wake(self) -> None:
        """Call after queueing: starts a drainer unless ``limit`` are running. One that
        has ended is left out at once; a done callback would run later in the loop, and
        a drainer counted until then would not come back for what was just queued."""
        self._tasks = [task for task in self._tasks if not task.done()]
        if len(self._tasks) < self._limit:
            self._tasks.append(asyncio.create_task(self._drain()))

    @property
    def running(self) -> int:
        """Drainers that have not ended."""
        return sum(not task.done() for task in self._tasks)
