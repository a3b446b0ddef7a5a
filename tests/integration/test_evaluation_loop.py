"""The evaluation loop against the real broker: at most ``concurrency`` messages in
flight, each handled once, offsets committed past everything handled; a stall longer
than SATURATED_WAIT pauses the partitions and loses nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from gavel.kafka import make_consumer, make_producer
from gavel.settings import Settings
from tests.helpers import create_topic
from worker import consumer as consumer_module
from worker.consumer import EvaluationLoop

MESSAGES = 60
CONCURRENCY = 4


@pytest_asyncio.fixture
async def topic(settings: Settings) -> AsyncIterator[str]:
    """A fresh one-partition topic holding MESSAGES messages."""
    name = await create_topic(settings.kafka, "it-loop")
    producer = make_producer(settings.kafka)
    await producer.start()
    try:
        for i in range(MESSAGES):
            await producer.send(name, key=b"k", value=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()
    yield name


class Handler:
    """Records what it handled and how many messages were in flight at once."""

    def __init__(self, hold: Callable[[int], Awaitable[None]]) -> None:
        self.handled: list[int] = []
        self.in_flight = self.most_in_flight = 0
        self._hold = hold

    async def __call__(self, message: ConsumerRecord) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self._hold(int(message.value))
            self.handled.append(int(message.value))
        finally:
            self.in_flight -= 1


async def _give_up(message: ConsumerRecord, error: str) -> None:
    raise AssertionError(f"no message should fail: {error}")


async def _run_until_handled(settings: Settings, topic: str, handler: Handler,
                             watch: Callable[[AIOKafkaConsumer], Awaitable[None]] | None = None
                             ) -> tuple[int | None, bool]:
    """Run a loop until every message is handled; the committed offset afterwards, and
    whether the partition was seen paused while the loop waited."""
    group = f"it-loop-{uuid.uuid4().hex[:8]}"
    consumer = make_consumer(settings.kafka, group_id=group, max_poll_records=CONCURRENCY * 2)
    await consumer.start()
    stop = asyncio.Event()
    loop = EvaluationLoop(consumer, [topic], handler, _give_up, CONCURRENCY,
                          shutdown_timeout=5)
    running = asyncio.create_task(loop.run(stop))
    paused = False
    try:
        if watch is not None:
            await watch(consumer)
        async with asyncio.timeout(60):
            while len(handler.handled) < MESSAGES:
                paused = paused or bool(consumer.paused())
                await asyncio.sleep(0.005)
        stop.set()
        await running
        return await consumer.committed(TopicPartition(topic, 0)), paused
    finally:
        stop.set()
        if not running.done():
            running.cancel()
        await consumer.stop()


async def test_in_flight_messages_stay_within_the_concurrency(settings: Settings,
                                                              topic: str) -> None:
    handler = Handler(lambda i: asyncio.sleep(0.01 * (i % 3)))
    committed, paused = await _run_until_handled(settings, topic, handler)
    assert sorted(handler.handled) == list(range(MESSAGES))
    assert handler.most_in_flight == CONCURRENCY
    assert committed == MESSAGES
    # places free up within SATURATED_WAIT: the fetched messages are kept, not paused
    # away and fetched again
    assert not paused


async def test_a_stall_pauses_the_partitions_and_loses_nothing(
        settings: Settings, topic: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_module, "SATURATED_WAIT", 0.2)
    released = asyncio.Event()

    async def hold(i: int) -> None:
        if i < CONCURRENCY:
            await released.wait()

    async def watch(consumer: AIOKafkaConsumer) -> None:
        # the first messages hold every place: the loop pauses its partition
        async with asyncio.timeout(30):
            while not consumer.paused():
                await asyncio.sleep(0.05)
        assert handler.handled == []
        released.set()

    handler = Handler(hold)
    committed, _ = await _run_until_handled(settings, topic, handler, watch)
    assert sorted(handler.handled) == list(range(MESSAGES))
    assert handler.most_in_flight == CONCURRENCY
    assert committed == MESSAGES
