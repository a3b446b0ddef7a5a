"""When a producer is replaced: only after the broker refused a value of the current
one as too large, once, and never after the keeper stopped. Producers are fakes: what
a real broker does after a refusal is tested in tests/integration/test_worker_publisher.py."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from gavel import kafka
from gavel.kafka import ProducerKeeper
from gavel.settings import KafkaSettings

KAFKA = KafkaSettings(bootstrap_servers="127.0.0.1:9")  # never reached: producers are fakes

class FakeProducer:
    def __init__(self) -> None:
        self.stopped = False

    async def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[FakeProducer]:
    producers: list[FakeProducer] = []

    async def start_producer(*_args: Any, **_kwargs: Any) -> FakeProducer:
        producers.append(FakeProducer())
        return producers[-1]

    monkeypatch.setattr(kafka, "start_producer", start_producer)
    return producers


async def test_a_refusal_as_too_large_replaces_the_producer_once(
        started: list[FakeProducer]) -> None:
    keeper = ProducerKeeper(KAFKA, "test")
    await keeper.start()
    first = await keeper.current()
    keeper.failed(first, KafkaTimeoutError())  # Kafka slow or away: the producer is fine
    assert await keeper.current() is first and not keeper.spent

    keeper.failed(first, MessageSizeTooLargeError())
    keeper.failed(first, MessageSizeTooLargeError())  # two sends of it refused
    assert keeper.spent
    second = await keeper.current()
    assert second is not first and first.stopped  # type: ignore[attr-defined]
    keeper.failed(first, MessageSizeTooLargeError())  # a late answer to the old one
    assert await keeper.current() is second
    assert len(started) == 2


async def test_a_stopped_keeper_starts_no_producer(started: list[FakeProducer]) -> None:
    keeper = ProducerKeeper(KAFKA, "test")
    await keeper.start()
    producer = await keeper.current()
    keeper.failed(producer, MessageSizeTooLargeError())
    await keeper.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        await keeper.current()
    assert len(started) == 1 and started[0].stopped
