"""The outbox relay against Kafka: a row Kafka refuses as too large is set aside and the
rows after it still go out; rows with a spread take the topic's partitions in turn.

Each test runs in a database of its own: the relay of the session's API app holds the
relay lock of the session database and would publish the rows itself.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from api.background import background
from api.outbox_relay import RETRY_REFUSED_SECONDS, OutboxRelay
from gavel.db import create_pool
from gavel.outbox import enqueue_spread
from gavel.settings import Settings
from tests.helpers import (
    KAFKA_DEFAULT_MESSAGE_BYTES,
    create_topic,
    keys_on,
    migrated_database,
    placed_on,
)

MIB = 1024 * 1024


@pytest_asyncio.fixture
async def own_database(stack_env: dict[str, str],
                       settings: Settings) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    async with migrated_database(stack_env["GAVEL_DATABASE_URL"],
                                 f"gavel_test_sizes_{uuid.uuid4().hex[:8]}") as url:
        pool = await create_pool(settings.database.model_copy(update={"url": url}))
        try:
            yield url, pool
        finally:
            await pool.close()


async def _until_published(relay: OutboxRelay, count: int) -> None:
    """Wait (30 s at most) until the relay has published ``count`` rows."""
    for _ in range(300):
        if relay.published == count:
            return
        await asyncio.sleep(0.1)


# the topic takes Kafka's default (1 MiB): refused by the broker when Gavel's producer
# allows more (a topic Gavel did not create), by the producer itself when it does not
@pytest.mark.parametrize("max_message_bytes", [8 * MIB, MIB], ids=["broker", "producer"])
async def test_a_row_too_large_for_kafka_is_set_aside_and_the_rest_go_out(
        own_database: tuple[str, asyncpg.Pool], settings: Settings,
        max_message_bytes: int) -> None:
    url, own_pool = own_database
    topic = await create_topic(settings.kafka, "test-sizes", KAFKA_DEFAULT_MESSAGE_BYTES)
    rows = [("first", {"n": 1}), ("too-large", {"blob": "x" * (MIB + MIB // 2)}),
            ("after", {"n": 2})]
    ids = [await own_pool.fetchval(
        "INSERT INTO outbox (topic, key, value) VALUES ($1, $2, $3) RETURNING id",
        topic, key, value) for key, value in rows]
    kafka = settings.kafka.model_copy(update={"max_message_bytes": max_message_bytes})
    relay = OutboxRelay(url, kafka, sweep_interval=0.2)
    async with background(relay.run(), "outbox-relay"):
        await _until_published(relay, 2)
        await asyncio.sleep(1)  # and the set-aside row is not offered again meanwhile

    state = {r["id"]: r for r in await own_pool.fetch(
        """SELECT id, published_at, publish_after > now() + make_interval(secs => $1) AS later
           FROM outbox""", RETRY_REFUSED_SECONDS - 60)}
    assert state[ids[0]]["published_at"] is not None
    assert state[ids[2]]["published_at"] is not None
    assert state[ids[1]]["published_at"] is None and state[ids[1]]["later"]
    assert relay.published == 2
    assert await keys_on(settings.kafka, topic, 2) == ["first", "after"]
    assert await own_pool.fetchval(  # kept, not lost
        "SELECT length(value ->> 'blob') FROM outbox WHERE id = $1", ids[1]) == MIB + MIB // 2


async def test_rows_with_a_spread_take_the_partitions_in_turn(
        own_database: tuple[str, asyncpg.Pool], settings: Settings) -> None:
    url, own_pool = own_database
    topic = await create_topic(settings.kafka, "test-spread", partitions=4)
    async with own_pool.acquire() as conn:
        await enqueue_spread(conn, [(topic, f"audit/{n + 1}", {"chunk": n + 1}, n)
                                    for n in range(10)])
        for n in range(3):  # by key: one key, one partition
            await conn.execute("INSERT INTO outbox (topic, key, value) VALUES ($1, $2, $3)",
                               topic, "org/group", {"change": n})
    relay = OutboxRelay(url, settings.kafka, sweep_interval=0.2)
    async with background(relay.run(), "outbox-relay"):
        await _until_published(relay, 13)

    placed = await placed_on(settings.kafka, topic, 13)
    spread = sorted((int(key.split("/")[1]), partition) for key, partition in placed
                    if key.startswith("audit/"))
    assert spread == [(n + 1, n % 4) for n in range(10)]
    assert len({partition for key, partition in placed if key == "org/group"}) == 1
    assert sum(key == "org/group" for key, _ in placed) == 3
