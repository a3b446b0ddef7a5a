"""What the worker publishes: each finished evaluation, without waiting for Kafka's
acknowledgement, and dead letters, waited for. One producer sends both; after the
broker refuses a value as too large a new one takes over (``ProducerKeeper``), or the
worker would publish nothing more to that partition until restarted."""

from __future__ import annotations

import asyncio
import functools
import logging

from aiokafka import AIOKafkaProducer

from gavel.kafka import ProducerKeeper
from gavel.metrics import record_unpublished
from gavel.settings import KafkaSettings

log = logging.getLogger(__name__)


class Publisher:
    def __init__(self, settings: KafkaSettings) -> None:
        self._keeper = ProducerKeeper(settings, "the worker's publishing")

    async def start(self) -> None:
        await self._keeper.start()

    async def stop(self) -> None:
        await self._keeper.stop()

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Queue a message; a failure to publish it is logged and counted
        (``gavel_unpublished_messages``), and nothing waits for it. What it reports
        is stored already: sending it is not retried."""
        producer = await self._keeper.current()
        try:
            future = await producer.send(topic, key=key, value=value)
        except Exception as exc:  # e.g. no metadata for the topic within the timeout
            self._unpublished(producer, topic, key, exc)
            return
        future.add_done_callback(functools.partial(self._sent, producer, topic, key))

    async def send_and_wait(self, topic: str, key: bytes | None, value: bytes) -> None:
        producer = await self._keeper.current()
        try:
            await producer.send_and_wait(topic, key=key, value=value)
        except Exception as exc:
            self._keeper.failed(producer, exc)
            raise

    def _sent(self, producer: AIOKafkaProducer, topic: str, key: bytes,
              future: asyncio.Future[object]) -> None:
        if future.cancelled() or future.exception() is None:
            return
        exc = future.exception()
        assert exc is not None
        self._unpublished(producer, topic, key, exc)

    def _unpublished(self, producer: AIOKafkaProducer, topic: str, key: bytes,
                     exc: BaseException) -> None:
        self._keeper.failed(producer, exc)
        record_unpublished(topic)
        log.warning("Kafka did not take a message for %s (key %s): %r", topic,
                    key.decode(errors="replace"), exc)
