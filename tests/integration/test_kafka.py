"""The real Kafka broker: produce, consume in a consumer group, commit the offset."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import uuid

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from gavel.kafka import (
    TOPIC_FIELDS,
    batch_limit,
    ensure_topics,
    make_consumer,
    make_producer,
    start_producer,
)
from gavel.settings import Settings
from tests.helpers import KAFKA_DEFAULT_MESSAGE_BYTES, create_topic


async def test_topics_are_created_idempotently(settings: Settings) -> None:
    await ensure_topics(settings.kafka)
    await ensure_topics(settings.kafka)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        topics = set(await admin.list_topics())
    finally:
        await admin.close()
    assert settings.kafka.topic_stack_events in topics
    assert settings.kafka.topic_group_changes in topics


async def test_created_topics_take_the_largest_message_and_smaller_ones_are_named(
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    created = f"test-large-{uuid.uuid4().hex[:8]}"
    small = await create_topic(settings.kafka, "test-small", KAFKA_DEFAULT_MESSAGE_BYTES)
    kafka = settings.kafka.model_copy(update={"topic_stack_events": created,
                                              "topic_account_events": small})
    with caplog.at_level(logging.WARNING, logger="gavel.kafka"):
        await ensure_topics(kafka)
    warnings = [r.getMessage() for r in caplog.records if r.name == "gavel.kafka"]
    assert len(warnings) == 1 and warnings[0].startswith(f"topic {small} takes messages of")
    assert f"to {batch_limit(kafka)}" in warnings[0]

    producer = await start_producer(kafka, "test")
    try:  # a value of the largest size goes through the topic Gavel created
        await producer.send_and_wait(created, key=b"k", value=b"x" * kafka.max_message_bytes)
    finally:
        await producer.stop()
    consumer = make_consumer(kafka, created)
    await consumer.start()
    try:
        found = []
        for _ in range(40):
            batch = await consumer.getmany(timeout_ms=500)
            found += [len(m.value) for messages in batch.values() for m in messages]
            if found:
                break
    finally:
        await consumer.stop()
    assert found == [kafka.max_message_bytes]


async def test_produce_consume_and_commit(settings: Settings) -> None:
    topic = await create_topic(settings.kafka, "it")
    group = f"it-group-{uuid.uuid4().hex[:8]}"

    producer = make_producer(settings.kafka)
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait(topic, key=b"k", value=f"v{i}".encode())
    finally:
        await producer.stop()

    consumer = make_consumer(settings.kafka, topic, group_id=group)
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10000, max_records=3)
        while sum(len(m) for m in batch.values()) < 3:
            more = await consumer.getmany(timeout_ms=10000)
            assert more, "expected three messages"
            for tp, msgs in more.items():
                batch.setdefault(tp, []).extend(msgs)
        values = [m.value for msgs in batch.values() for m in msgs]
        assert values == [b"v0", b"v1", b"v2"]
        await consumer.commit()
        assert await consumer.committed(TopicPartition(topic, 0)) == 3
    finally:
        await consumer.stop()

    # a new member of the same group resumes after the committed offset
    again = make_consumer(settings.kafka, topic, group_id=group)
    await again.start()
    try:
        assert await again.committed(TopicPartition(topic, 0)) == 3
        assert await again.getmany(timeout_ms=1500) == {}
    finally:
        await again.stop()


async def test_a_producer_cancelled_while_starting_is_closed(settings: Settings) -> None:
    # cancelled at every point of its start (as at shutdown), nothing is left open: the
    # suite turns an unclosed connection's ResourceWarning into a failure
    for delay in (0.0, 0.001, 0.003, 0.005, 0.01, 0.02, 0.05):
        starting = asyncio.create_task(start_producer(settings.kafka, "the test"))
        await asyncio.sleep(delay)
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            producer = await starting
            await producer.stop()
        gc.collect()


async def test_a_group_that_joins_right_after_ensure_topics_gets_every_partition(
        settings: Settings) -> None:
    # new topics: a group assigned before their partitions are in the broker's metadata
    # would get none of them until its next metadata refresh, minutes later
    tag = uuid.uuid4().hex[:8]
    kafka = settings.kafka.model_copy(update={
        field: f"fresh-{tag}.{field}" for field in TOPIC_FIELDS})
    await ensure_topics(kafka)
    consumer = make_consumer(kafka, kafka.topic_stack_events, kafka.topic_audit_chunks,
                             group_id=f"fresh-{tag}")
    await consumer.start()
    try:
        expected = {TopicPartition(topic, p) for topic in (kafka.topic_stack_events,
                                                           kafka.topic_audit_chunks)
                    for p in range(kafka.partitions)}
        for _ in range(300):
            await consumer.getmany(timeout_ms=100)
            if consumer.assignment() == expected:
                break
        assert consumer.assignment() == expected
    finally:
        await consumer.stop()
