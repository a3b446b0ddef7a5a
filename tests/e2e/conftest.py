"""An API client against the real app (real Postgres, Kafka and OPA behind it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from gavel.settings import Settings


@pytest_asyncio.fixture(scope="session")
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client

