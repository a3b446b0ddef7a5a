"""Small helpers shared by tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from gavel.migrations import migrate
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
async def migrated_database(base_url: str, name: str) -> AsyncIterator[str]:
    """Create database ``name`` beside ``base_url``, migrate it, drop it afterwards."""
    admin = await asyncpg.connect(base_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = base_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
