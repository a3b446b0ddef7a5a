"""An API client against the real app (real Postgres, Kafka and OPA behind it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from gavel.settings import Settings


@pytest_asyncio.fixture(scope="session")
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client



@pytest_asyncio.fixture(scope="session")
async def worker(settings: Settings, client: TestClient) -> AsyncIterator[asyncio.Task[None]]:
    """A real worker consuming the session's topics (the client's app relays the outbox)."""
    from worker.service import run_worker

    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(settings, stop))
    await asyncio.sleep(0)
    yield task
    stop.set()
    await asyncio.wait_for(task, 60)
