"""Reading group-change events back from the real Kafka broker."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from gavel.kafka import make_consumer
from gavel.settings import KafkaSettings


async def org_events(kafka: KafkaSettings, topic: str, org: str, expected: int,
                     timeout: float = 60.0) -> list[dict[str, Any]]:
    """Read ``topic`` from the start until ``expected`` events of ``org`` arrived,
    then a little longer to catch any duplicate."""
    consumer = make_consumer(kafka, topic)
    await consumer.start()
    events: list[dict[str, Any]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        settle_until: float | None = None
        while loop.time() < (settle_until or deadline):
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                events.extend(json.loads(m.value) for m in messages
                              if m.key == org.encode())
            if len(events) >= expected and settle_until is None:
                settle_until = loop.time() + 2.0
    finally:
        await consumer.stop()
    return events
