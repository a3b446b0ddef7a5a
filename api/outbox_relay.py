"""Publishes outbox rows to Kafka in id order, marking them only after Kafka acked.

One relay is active at a time (a Postgres advisory lock held on its listening
connection), so rows leave in the order they were written, which keeps each org's
changes in revision order. Kafka being down only delays publishing: rows wait. A row
Kafka refuses as too large (a topic allowing less than GAVEL_KAFKA_MAX_MESSAGE_BYTES)
is set aside for an hour and logged, and the rows after it go on.
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg
from aiokafka import AIOKafkaProducer

from api.leadership import lead_forever
from gavel.kafka import TOO_LARGE, ProducerKeeper
from gavel.outbox import CHANNEL
from gavel.settings import KafkaSettings

log = logging.getLogger(__name__)
_LEADER_LOCK = 0x6761_7665_6C_01
RETRY_REFUSED_SECONDS = 3600.0


class OutboxRelay:
    def __init__(self, dsn: str, kafka: KafkaSettings, batch_size: int = 500,
                 sweep_interval: float = 1.0, keep_published: float = 3600.0) -> None:
        self._dsn = dsn
        self._keep_published = keep_published
        self._next_prune = 0.0
        self._kafka = kafka
        self._batch_size = batch_size
        self._sweep_interval = sweep_interval
        self._wake = asyncio.Event()
        self.published = 0

    async def run(self) -> None:
        """Run until cancelled; reconnects to Postgres and Kafka as needed."""
        await lead_forever("outbox relay", self._dsn, _LEADER_LOCK, self._lead,
                           standby_poll=self._sweep_interval, retry_delay=1)

    async def _lead(self, conn: asyncpg.Connection) -> None:
        await conn.add_listener(CHANNEL, lambda *_: self._wake.set())
        keeper = ProducerKeeper(self._kafka, "outbox relay")
        await keeper.start()
        try:
            # its own connection: under load the API's pool queue would delay publishing
            await self._publish_forever(keeper, conn)
        finally:
            await keeper.stop()

    async def _publish_forever(self, keeper: ProducerKeeper, conn: asyncpg.Connection) -> None:
        delay = 0.5
        while True:
            self._wake.clear()
            try:
                sent = await self.publish_batch(keeper, conn)
                await self._prune(conn)
                delay = 0.5
            except Exception as exc:
                log.warning("publishing the outbox failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
                continue
            # after a refusal a new producer sends the rows behind the refused one at once
            if sent < self._batch_size and not keeper.spent:
                try:
                    await asyncio.wait_for(self._wake.wait(), self._sweep_interval)
                except TimeoutError:
                    pass

    async def publish_batch(self, keeper: ProducerKeeper, conn: asyncpg.Connection) -> int:
        """Publish the next rows in id order; a row Kafka refuses is set aside, and when
        the broker refused it the rows after it wait for the next batch (``keeper``
        replaces the producer)."""
        rows = await conn.fetch(
            """SELECT id, topic, key, value::text AS value, spread FROM outbox
               WHERE published_at IS NULL AND (publish_after IS NULL OR publish_after <= now())
               ORDER BY id LIMIT $1""", self._batch_size)
        if not rows:
            return 0
        producer = await keeper.current()
        partitions: dict[str, list[int]] = {}  # by topic, looked up once per batch
        sent: list[tuple[asyncpg.Record, asyncio.Future[object]]] = []
        refused: list[asyncpg.Record] = []
        for row in rows:
            partition = None
            if row["spread"] is not None:
                partition = await _spread_partition(producer, partitions, row)
            try:
                sent.append((row, await producer.send(row["topic"], key=row["key"].encode(),
                                                      value=row["value"].encode(),
                                                      partition=partition)))
            except TOO_LARGE:
                refused.append(row)
        acked: list[int] = []
        failure: BaseException | None = None
        for row, future in sent:
            try:
                await future
            except TOO_LARGE as exc:
                refused.append(row)
                keeper.failed(producer, exc)
                break
            except Exception as exc:
                failure = exc
                break
            acked.append(row["id"])
        if acked:
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", acked)
            self.published += len(acked)
        if refused:
            await self._set_aside(conn, refused)
        if failure is not None:
            raise failure
        return len(rows)

    async def _set_aside(self, conn: asyncpg.Connection, refused: list[asyncpg.Record]) -> None:
        """Rows Kafka refuses as too large wait RETRY_REFUSED_SECONDS, kept, rather than
        hold up every row after them."""
        await conn.execute(
            """UPDATE outbox SET publish_after = now() + make_interval(secs => $2)
               WHERE id = ANY($1::bigint[])""",
            [row["id"] for row in refused], RETRY_REFUSED_SECONDS)
        for row in refused:
            log.error("outbox row %s (%s, key %s) is %d bytes, more than Kafka takes; it is "
                      "tried again in %.0f s: raise the topic's max.message.bytes to "
                      "GAVEL_KAFKA_MAX_MESSAGE_BYTES (%d) or more", row["id"], row["topic"],
                      row["key"], len(row["value"].encode()), RETRY_REFUSED_SECONDS,
                      self._kafka.max_message_bytes)

    async def _prune(self, conn: asyncpg.Connection) -> None:
        """Delete rows published more than ``keep_published`` seconds ago, a batch a
        minute (rows are published in id order, so the oldest come first)."""
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + 60
        deleted = await conn.execute(
            """DELETE FROM outbox WHERE id IN (
                   SELECT id FROM outbox WHERE published_at IS NOT NULL
                     AND published_at < now() - make_interval(secs => $1)
                   ORDER BY id LIMIT 10000)""", self._keep_published)
        log.debug("outbox: %s published rows pruned", deleted.removeprefix("DELETE "))


async def _spread_partition(producer: AIOKafkaProducer, partitions: dict[str, list[int]],
                            row: asyncpg.Record) -> int:
    """The partition of a row with a spread: the topic's partitions taken in turn."""
    topic = row["topic"]
    if topic not in partitions:
        partitions[topic] = sorted(await producer.partitions_for(topic))
    return partitions[topic][row["spread"] % len(partitions[topic])]
