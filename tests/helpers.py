"""Small helpers shared by tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from gavel.migrations import discover, migrate
from gavel.settings import KafkaSettings


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


async def create_topic(kafka: KafkaSettings, prefix: str) -> str:
    """A new one-partition topic named ``prefix`` and a random suffix."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()
    return name


@asynccontextmanager
async def migrated_database(base_url: str, name: str,
                            before: int | None = None) -> AsyncIterator[str]:
    """Create database ``name`` beside ``base_url``, migrate it (only the migrations
    numbered below ``before``, if given), drop it afterwards."""
    admin = await asyncpg.connect(base_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = base_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn, None if before is None else
                          [m for m in discover() if m.version < before])
        finally:
            await conn.close()
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
