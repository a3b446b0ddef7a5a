"""Consumer lag of the worker's assigned partitions: highwater minus position.

Measured with a ListOffsets request rather than the highwater of the last fetch,
because a saturated worker stops fetching (its partitions' next records wait in the
buffer, or are paused) and would report a stale lag exactly when it falls behind.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from gavel.metrics import set_consumer_lag

log = logging.getLogger(__name__)


async def measure_lag(consumer: AIOKafkaConsumer, timeout: float = 2.0
                      ) -> dict[tuple[str, int], int]:
    assigned = consumer.assignment()
    if not assigned:
        return {}
    ends: dict[TopicPartition, int] = await asyncio.wait_for(
        consumer.end_offsets(list(assigned)), timeout)
    lags: dict[tuple[str, int], int] = {}
    for tp, end in ends.items():
        if tp not in consumer.assignment():
            continue  # revoked while we asked
        try:
            # a just-assigned partition has no position until its committed offset is read
            position = await asyncio.wait_for(consumer.position(tp), timeout)
        except (TimeoutError, KafkaError):
            continue
        lags[(tp.topic, tp.partition)] = max(0, end - position)
    return lags


async def report_lag(consumer: AIOKafkaConsumer, interval: float) -> None:
    """Refresh the lag gauge every ``interval`` seconds until cancelled."""
    try:
        while True:
            try:
                set_consumer_lag(await measure_lag(consumer))
            except (TimeoutError, KafkaError) as exc:
                log.debug("consumer lag not measured (%r)", exc)
            await asyncio.sleep(interval)
    finally:
        # a stopped loop owns no partitions
        set_consumer_lag({})
