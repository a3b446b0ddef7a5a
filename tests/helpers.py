"""Small helpers shared by tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from gavel.db import create_pool
from gavel.kafka import make_consumer
from gavel.migrations import discover, migrate
from gavel.settings import DatabaseSettings, KafkaSettings


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


# Kafka's own default of message.max.bytes (1 MiB and a record batch's overhead); the
# dev stack's broker allows more
KAFKA_DEFAULT_MESSAGE_BYTES = 1048588


async def create_topic(kafka: KafkaSettings, prefix: str,
                       max_message_bytes: int | None = None, partitions: int = 1) -> str:
    """A new topic (one partition by default) named ``prefix`` and a random suffix,
    taking messages of up to ``max_message_bytes`` (by default what the broker sets)."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    configs = {} if max_message_bytes is None else {
        "max.message.bytes": str(max_message_bytes)}
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs)])
    finally:
        await admin.close()
    return name


async def keys_on(kafka: KafkaSettings, topic: str, count: int) -> list[str]:
    """The keys of the first ``count`` messages on ``topic`` (fewer if 20 s pass)."""
    return [key for key, _ in await placed_on(kafka, topic, count)]


async def placed_on(kafka: KafkaSettings, topic: str, count: int) -> list[tuple[str, int]]:
    """(key, partition) of the first ``count`` messages on ``topic``, in order within
    each partition (fewer if 20 s pass)."""
    consumer = make_consumer(kafka, topic)
    await consumer.start()
    placed: list[tuple[str, int]] = []
    try:
        for _ in range(40):
            batch = await consumer.getmany(timeout_ms=500)
            placed += [(m.key.decode(), m.partition)
                       for messages in batch.values() for m in messages]
            if len(placed) >= count:
                break
    finally:
        await consumer.stop()
    return placed


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


@asynccontextmanager
async def pool_migrated_before(base_url: str, database: DatabaseSettings, name: str,
                               before: int) -> AsyncIterator[asyncpg.Pool]:
    """A pool on database ``name``, created beside ``base_url`` and migrated only below
    ``before`` (a test writes what was there before, then migrates the rest)."""
    async with migrated_database(base_url, name, before) as url:
        pool = await create_pool(database.model_copy(update={"url": url}))
        try:
            yield pool
        finally:
            await pool.close()


# an org's evaluations counted by hour and day received, entity type and kind, as
# evaluation_counts should hold them
_EVALUATIONS_RECOUNTED = """
SELECT s.span, date_trunc(s.span, e.received_at, 'UTC') AS received, e.entity_type, e.kind,
       count(*) AS evaluations
FROM evaluations e CROSS JOIN (VALUES ('hour'), ('day')) AS s(span)
WHERE e.org_id = $1 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
"""


async def assert_evaluations_counted(pool: asyncpg.Pool, org_id: int) -> None:
    """The org's kept counts of evaluations received are those of its evaluations."""
    kept = await pool.fetch("SELECT span, received, entity_type, kind, evaluations "
                            "FROM evaluation_counts WHERE org_id = $1 ORDER BY 1, 2, 3, 4",
                            org_id)
    assert [tuple(r) for r in kept] == [
        tuple(r) for r in await pool.fetch(_EVALUATIONS_RECOUNTED, org_id)]
