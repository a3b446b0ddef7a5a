"""Jobs that run alongside the API for as long as it runs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def background(job: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """Run ``job`` while the context is open; cancel it when it closes."""
    task = asyncio.create_task(job, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
