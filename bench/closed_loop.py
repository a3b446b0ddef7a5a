"""A closed-loop HTTP load generator: C clients, each sending its next GET as soon as the
last one is answered, for a fixed time. Records latency and status of every request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)


async def closed_loop(session: aiohttp.ClientSession, url_for: Callable[[int], str],
                      headers: dict[str, str], concurrency: int, seconds: float
                      ) -> LoadResult:
    """GET ``url_for(n)`` (n counts requests) from ``concurrency`` clients for ``seconds``."""
    result = LoadResult()
    counter = iter(range(1 << 62))
    began = time.perf_counter()
    stop_at = began + seconds

    async def client() -> None:
        while time.perf_counter() < stop_at:
            url = url_for(next(counter))
            sent = time.perf_counter()
            async with session.get(url, headers=headers) as resp:
                await resp.read()
                status = resp.status
            result.latencies_ms.append((time.perf_counter() - sent) * 1000)
            result.statuses[status] = result.statuses.get(status, 0) + 1

    await asyncio.gather(*(client() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - began
    return result
