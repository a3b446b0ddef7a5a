"""The worker's publisher goes on after the broker refuses a value as too large, and so
does its dead-lettering.

The topic takes Kafka's default (1 MiB) while the producer allows more, as when a topic
was created by hand: the broker refuses the value, and an idempotent producer would
then fail every later batch to the partition out of sequence.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from aiokafka.structs import ConsumerRecord
from prometheus_client import REGISTRY

from gavel.settings import Settings
from tests.helpers import KAFKA_DEFAULT_MESSAGE_BYTES, create_topic, keys_on
from worker.dead_letters import DeadLetters
from worker.publisher import Publisher

MIB = 1024 * 1024


def _unpublished(topic: str) -> float:
    return REGISTRY.get_sample_value("gavel_unpublished_messages_total",
                                     {"topic": topic}) or 0.0


async def test_after_a_refused_value_later_messages_still_go_out(settings: Settings) -> None:
    topic = await create_topic(settings.kafka, "test-publisher",
                                KAFKA_DEFAULT_MESSAGE_BYTES)
    publisher = Publisher(settings.kafka.model_copy(update={"max_message_bytes": 8 * MIB}))
    await publisher.start()
    try:
        await publisher.send(topic, b"first", b"{}")
        await publisher.send(topic, b"too-large", b"x" * (MIB + MIB // 2))
        for _ in range(200):  # sent without waiting: the refusal comes later
            if _unpublished(topic) == 1:
                break
            await asyncio.sleep(0.05)
        assert _unpublished(topic) == 1
        await publisher.send(topic, b"after", b"{}")
        await publisher.send_and_wait(topic, b"waited", b"{}")
    finally:
        await publisher.stop()

    assert await keys_on(settings.kafka, topic, 3) == ["first", "after", "waited"]
    assert _unpublished(topic) == 1


async def test_a_dead_letter_the_topic_refuses_is_kept_and_the_worker_goes_on(
        settings: Settings, pool: asyncpg.Pool) -> None:
    dead_letter_topic = await create_topic(settings.kafka, "test-dead-letters",
                                           KAFKA_DEFAULT_MESSAGE_BYTES)
    source = f"test-source-{uuid.uuid4().hex[:8]}"  # the topic the bad messages came from
    kafka = settings.kafka.model_copy(update={"max_message_bytes": 8 * MIB})
    publisher = Publisher(kafka)
    await publisher.start()
    dead_letters = DeadLetters(pool, publisher, dead_letter_topic, kafka.max_message_bytes)
    try:
        for offset, (key, value) in enumerate([(b"large", b"x" * (MIB + MIB // 2)),
                                               (b"small", b"not json")]):
            await dead_letters.send(ConsumerRecord(
                topic=source, partition=0, offset=offset, timestamp=0, timestamp_type=0,
                key=key, value=value, checksum=None, serialized_key_size=len(key),
                serialized_value_size=len(value), headers=()), "bad event")
    finally:
        await publisher.stop()

    assert dead_letters.count == 2
    assert await keys_on(settings.kafka, dead_letter_topic, 1) == ["small"]
    kept = await pool.fetch('SELECT key, length(value) AS size FROM dead_letters '
                            'WHERE topic = $1 ORDER BY "offset"', source)
    assert [(r["key"], r["size"]) for r in kept] == [(b"large", MIB + MIB // 2),
                                                     (b"small", 8)]
