"""Publishes outbox rows to Kafka in id order, marking them only after Kafka acked.

One relay is active at a time (a Postgres advisory lock held on its listening
connection), so rows leave in the order they were written, which keeps each org's
changes in revision order. Kafka being down only delays publishing: rows wait.
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg
from aiokafka import AIOKafkaProducer

from api.leadership import lead_forever
from gavel.kafka import start_producer
from gavel.outbox import CHANNEL
from gavel.settings import KafkaSettings

log = logging.getLogger(__name__)
_LEADER_LOCK = 0x6761_7665_6C_01


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
        producer = await start_producer(self._kafka, "outbox relay")
        try:
            # its own connection: under load the API's pool queue would delay publishing
            await self._publish_forever(producer, conn)
        finally:
            await producer.stop()

    async def _publish_forever(self, producer: AIOKafkaProducer,
                               conn: asyncpg.Connection) -> None:
        delay = 0.5
        while True:
            self._wake.clear()
            try:
                sent = await self.publish_batch(producer, conn)
                await self._prune(conn)
                delay = 0.5
            except Exception as exc:
                log.warning("publishing the outbox failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
                continue
            if sent < self._batch_size:
                try:
                    await asyncio.wait_for(self._wake.wait(), self._sweep_interval)
                except TimeoutError:
                    pass

    async def publish_batch(self, producer: AIOKafkaProducer, conn: asyncpg.Connection) -> int:
        rows = await conn.fetch(
            """SELECT id, topic, key, value::text AS value FROM outbox
               WHERE published_at IS NULL AND (publish_after IS NULL OR publish_after <= now())
               ORDER BY id LIMIT $1""", self._batch_size)
        if not rows:
            return 0
        futures = [await producer.send(r["topic"], key=r["key"].encode(),
                                       value=r["value"].encode()) for r in rows]
        acked: list[int] = []
        failure: BaseException | None = None
        for row, future in zip(rows, futures, strict=True):
            try:
                await future
            except Exception as exc:
                failure = exc
                break
            acked.append(row["id"])
        if acked:
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", acked)
            self.published += len(acked)
        if failure is not None:
            raise failure
        return len(rows)

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
