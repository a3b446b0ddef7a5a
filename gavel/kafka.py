"""Kafka helpers: topic creation, producer and consumer factories."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAlreadyExistsError,
)
from aiokafka.partitioner import DefaultPartitioner, murmur2

from gavel.settings import KafkaSettings

log = logging.getLogger(__name__)

# seconds a cancelled start_producer lets the producer's start end before closing it
STOP_WAIT = 5.0
# seconds ensure_topics waits for every partition of the topics to have a leader
TOPICS_READY_WAIT = 60.0

# a value refused for its size, by the producer or by the broker
TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)
# room for a record batch's own headers around the largest value
BATCH_OVERHEAD = 16 * 1024

# What a producer gathers per partition. aiokafka holds one batch per partition while a
# request is out, and a send that does not fit in it waits until that request is
# answered: at its default of 16 KiB two finished evaluations of 100 resources filled
# it. Well below the 1 MiB a topic takes by default, so that small values do not make
# a batch that a topic created by hand with the default refuses; a value larger than
# a batch travels alone, and a refusal of it takes no other value with it.
PRODUCER_BATCH_BYTES = 256 * 1024

# every topic setting of ``KafkaSettings``
TOPIC_FIELDS = ("topic_group_changes", "topic_stack_events", "topic_account_events",
                "topic_evaluations", "topic_dead_letter", "topic_audit_chunks")


def all_topics(settings: KafkaSettings) -> list[str]:
    return [getattr(settings, field) for field in TOPIC_FIELDS]


def batch_limit(settings: KafkaSettings) -> int:
    """The record batch size producers, consumers and Gavel's topics allow: one value of
    ``max_message_bytes`` fits."""
    return settings.max_message_bytes + BATCH_OVERHEAD


async def ensure_topics(settings: KafkaSettings) -> None:
    """Create Gavel's topics if they are missing (idempotent), and return once every
    partition of them has a leader: a consumer group that joins before a new topic's
    partitions are in the broker's metadata is assigned none of them, and learns of
    them only at its next metadata refresh, minutes later."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(name, settings.partitions, settings.replication_factor,
                            topic_configs={"max.message.bytes": str(batch_limit(settings))})
                   for name in all_topics(settings) if name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
            log.info("created topics %s", [t.name for t in missing])
            await _partitions_led(admin, [t.name for t in missing])
        await _warn_of_small_topics(admin, settings)
    finally:
        await admin.close()


async def _warn_of_small_topics(admin: AIOKafkaAdminClient, settings: KafkaSettings) -> None:
    """Log a warning for each of Gavel's topics that takes smaller messages than
    ``max_message_bytes`` (created by hand, or before the setting): Kafka refuses the
    largest events there."""
    try:
        described = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in all_topics(settings)])
    except Exception as exc:  # a broker that does not let us look: nothing to warn of
        log.debug("cannot read the topics' configs: %r", exc)
        return
    for response in described:
        for error, _message, _type, name, entries in response.resources:
            limit = next((int(e[1]) for e in entries if e[0] == "max.message.bytes"), None)
            if not error and limit is not None and limit < batch_limit(settings):
                log.warning("topic %s takes messages of at most %d bytes, less than "
                            "GAVEL_KAFKA_MAX_MESSAGE_BYTES (%d): raise its max.message.bytes "
                            "to %d, or lower the setting", name, limit,
                            settings.max_message_bytes, batch_limit(settings))


async def _partitions_led(admin: AIOKafkaAdminClient, topics: list[str]) -> None:
    """Wait (up to TOPICS_READY_WAIT) until the broker reports a leader for every
    partition of ``topics``."""
    deadline = asyncio.get_running_loop().time() + TOPICS_READY_WAIT
    while True:
        described = await admin.describe_topics(topics)
        waiting = [t["topic"] for t in described
                   if t["error_code"] or not t["partitions"]
                   or any(p["leader"] < 0 for p in t["partitions"])]
        if not waiting:
            return
        if asyncio.get_running_loop().time() > deadline:
            log.warning("topics %s still have partitions without a leader", waiting)
            return
        await asyncio.sleep(0.1)


class KeyPartitioner:
    """The partitioner of Kafka's clients (murmur2 of the key, modulo the partitions;
    aiokafka's default) with each key's hash remembered. An entity's results and events
    are keyed by the entity, so the same keys come again and again, and aiokafka's hash
    in pure Python took 3 % of a worker's time. At most ``kept`` hashes are kept, past
    which the memory starts over. A message without a key goes to a random partition,
    as with the default."""

    def __init__(self, kept: int = 65536) -> None:
        self._kept = kept
        self._hashes: dict[bytes, int] = {}
        self._default = DefaultPartitioner()

    def __call__(self, key: bytes | None, all_partitions: list[int],
                 available: list[int]) -> int:
        if key is None:
            return self._default(key, all_partitions, available)
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= self._kept:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]


def make_producer(settings: KafkaSettings, **overrides: object) -> AIOKafkaProducer:
    options: dict[str, object] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "partitioner": KeyPartitioner(),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        "request_timeout_ms": 15000,
        "max_request_size": batch_limit(settings),
        "max_batch_size": min(PRODUCER_BATCH_BYTES, batch_limit(settings)),
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


async def start_producer(settings: KafkaSettings, waiting: str,
                         **overrides: object) -> AIOKafkaProducer:
    """A started producer, retrying with backoff (0.5 s doubling to 10 s) until Kafka
    answers; ``waiting`` says in the log what waits meanwhile. Cancelled while starting
    (the process shutting down), it lets the start end, for up to STOP_WAIT seconds,
    and closes the producer: aiokafka leaves its bootstrap connection open when its
    start is cancelled."""
    delay = 0.5
    while True:
        producer = make_producer(settings, **overrides)
        starting = asyncio.ensure_future(producer.start())
        try:
            await asyncio.shield(starting)
            return producer
        except asyncio.CancelledError:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(starting, STOP_WAIT)
            await producer.stop()
            raise
        except Exception as exc:
            await producer.stop()
            log.warning("%s cannot reach Kafka (%s); retrying in %.1fs", waiting, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)


class ProducerKeeper:
    """Keeps a started producer, and replaces it once the broker has refused a value of
    it as too large (a topic allowing less than GAVEL_KAFKA_MAX_MESSAGE_BYTES): the
    idempotent producer's later batches to that partition would fail out of sequence
    (OutOfOrderSequenceNumber) for as long as it lives. ``producer`` is None until
    started, and while a new one starts."""

    def __init__(self, settings: KafkaSettings, waiting: str, **overrides: object) -> None:
        self._settings = settings
        self._waiting = waiting
        self._overrides = overrides
        self._lock = asyncio.Lock()
        self._spent = False
        self._stopped = False
        self.producer: AIOKafkaProducer | None = None

    @property
    def spent(self) -> bool:
        return self._spent

    async def start(self) -> None:
        self.producer = await start_producer(self._settings, self._waiting, **self._overrides)

    def failed(self, producer: AIOKafkaProducer, exc: BaseException) -> None:
        """Note a send of ``producer`` that failed with ``exc``."""
        if isinstance(exc, TOO_LARGE) and producer is self.producer:
            self._spent = True

    async def current(self) -> AIOKafkaProducer:
        """The producer to send with: a new one (waited for) if the last one is spent.
        Raises RuntimeError once stopped."""
        if self.producer is not None and not self._spent:
            return self.producer
        async with self._lock:
            if self._stopped:
                raise RuntimeError(f"{self._waiting}: the Kafka producer was stopped")
            if self._spent or self.producer is None:
                spent, self.producer = self.producer, None
                self._spent = False
                if spent is not None:
                    log.info("%s: a new Kafka producer replaces the one whose value the "
                             "broker refused", self._waiting)
                    with contextlib.suppress(Exception):
                        await spent.stop()
                await self.start()
                if self._stopped:  # stopped while this one started
                    await self.stop()
                    raise RuntimeError(f"{self._waiting}: the Kafka producer was stopped")
            assert self.producer is not None
            return self.producer

    async def stop(self) -> None:
        self._stopped = True
        producer, self.producer = self.producer, None
        if producer is not None:
            await producer.stop()


def make_consumer(settings: KafkaSettings, *topics: str, **overrides: object) -> AIOKafkaConsumer:
    options: dict[str, object] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_partition_fetch_bytes": batch_limit(settings),
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)
