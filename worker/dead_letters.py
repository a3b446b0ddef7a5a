"""Dead letters: a Kafka topic and a Postgres row for every event we cannot use.

A burst where most recent messages are bad (a broken producer deployed) stops the
worker loudly instead of quietly dead-lettering everything.
"""

from __future__ import annotations

import collections
import logging

import asyncpg
import orjson
from aiokafka.structs import ConsumerRecord

from gavel.kafka import TOO_LARGE
from gavel.metrics import record_dead_letter
from worker.publisher import Publisher

log = logging.getLogger(__name__)


class DeadLetterBurst(RuntimeError):
    pass


class BurstGuard:
    def __init__(self, window: int = 200, max_ratio: float = 0.5, min_bad: int = 50) -> None:
        self._recent: collections.deque[bool] = collections.deque(maxlen=window)
        self._max_ratio = max_ratio
        self._min_bad = min_bad

    def record(self, bad: bool) -> None:
        self._recent.append(bad)
        bad_count = sum(self._recent)
        if bad_count >= self._min_bad and bad_count / len(self._recent) > self._max_ratio:
            raise DeadLetterBurst(
                f"{bad_count} of the last {len(self._recent)} messages were dead-lettered; "
                "stopping instead of dead-lettering everything (check the producers)")


class DeadLetters:
    def __init__(self, pool: asyncpg.Pool, publisher: Publisher, topic: str,
                 max_message_bytes: int) -> None:
        self._pool = pool
        self._publisher = publisher
        self._topic = topic
        self._max_message_bytes = max_message_bytes
        self.count = 0

    async def send(self, message: ConsumerRecord, error: str) -> None:
        await self._pool.execute(
            """INSERT INTO dead_letters (topic, partition, "offset", key, value, error)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
            message.topic, message.partition, message.offset, message.key, message.value, error)
        value = dead_letter_message(message, error, self._max_message_bytes)
        try:
            await self._publisher.send_and_wait(self._topic, key=message.key, value=value)
        except TOO_LARGE as exc:
            # a topic taking less than GAVEL_KAFKA_MAX_MESSAGE_BYTES: the dead_letters
            # table has it; failing the message would stop the worker after each restart
            log.error("the dead letter of %s[%d]@%d (%d bytes) was not published to %s "
                      "(%r); the dead_letters table keeps it: raise the topic's "
                      "max.message.bytes to GAVEL_KAFKA_MAX_MESSAGE_BYTES or more",
                      message.topic, message.partition, message.offset, len(value),
                      self._topic, exc)
        self.count += 1
        record_dead_letter(message.topic)
        log.warning("dead-lettered %s[%d]@%d: %s", message.topic, message.partition,
                    message.offset, error[:500])


def dead_letter_message(message: ConsumerRecord, error: str, max_bytes: int) -> bytes:
    """The dead letter for the topic: where the message was, why, and its value, which
    escaped as a JSON string can outgrow ``max_bytes``: then ``valueOmitted`` stands in
    for it (the dead_letters table keeps it)."""
    envelope = {"topic": message.topic, "partition": message.partition,
                "offset": message.offset, "error": error,
                "value": (message.value or b"").decode("utf-8", errors="replace")}
    value = orjson.dumps(envelope)
    if len(value) > max_bytes:
        envelope["value"] = None
        envelope["valueOmitted"] = len(message.value or b"")
        value = orjson.dumps(envelope)
    return value
