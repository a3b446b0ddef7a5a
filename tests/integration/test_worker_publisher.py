"""The worker's publisher goes on after the broker refuses a value as too large.

The topic takes Kafka's default (1 MiB) while the producer allows more, as when a topic
was created by hand: the broker refuses the value, and an idempotent producer would
then fail every later batch to the partition out of sequence.
"""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from gavel.settings import Settings
from tests.helpers import create_topic, keys_on
from worker.publisher import Publisher

MIB = 1024 * 1024


def _unpublished(topic: str) -> float:
    return REGISTRY.get_sample_value("gavel_unpublished_messages_total",
                                     {"topic": topic}) or 0.0


async def test_after_a_refused_value_later_messages_still_go_out(settings: Settings) -> None:
    topic = await create_topic(settings.kafka, "test-publisher")
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
