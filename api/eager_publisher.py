"""Publishing accepted events straight away, with the outbox relay as the safety net.

An event accepted over HTTP is committed to the outbox with ``publish_after`` a few
seconds ahead, then sent to Kafka by the API process that accepted it, without
waiting for the relay's next round. Rows Kafka acknowledged are marked published in
batches. A row this publisher never got out (Kafka down, the process gone) is
published by the relay once ``publish_after`` has passed; a row sent by both arrives
twice, which the worker ignores (the evaluation id is stored once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer

from gavel.evaluations import Accepted
from gavel.kafka import ProducerKeeper
from gavel.settings import KafkaSettings

log = logging.getLogger(__name__)
# how long the relay leaves an eagerly published row alone
GRACE_SECONDS = 5.0
MARK_INTERVAL = 0.05


class EagerPublisher:
    def __init__(self, pool: asyncpg.Pool, kafka: KafkaSettings) -> None:
        self._pool = pool
        # one event per request: lingering would only delay it (what queues while a
        # request is out still leaves together)
        self._keeper = ProducerKeeper(
            kafka, "eager publishing (the relay publishes meanwhile)", linger_ms=0)
        self._acked: list[tuple[int, datetime]] = []  # (outbox id, acknowledged at)
        self._wake = asyncio.Event()
        self._sending: set[asyncio.Task[None]] = set()

    @property
    def grace(self) -> float:
        """``publish_after`` for a row accepted now: 0 (the relay's) while Kafka is out
        of reach of this process."""
        return GRACE_SECONDS if self._keeper.producer is not None else 0.0

    def publish(self, accepted: Accepted) -> None:
        """Send in the background; the request does not wait for Kafka."""
        producer = self._keeper.producer
        if producer is None or accepted.outbox_id is None:
            return
        task = asyncio.create_task(self._send(producer, accepted))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, producer: AIOKafkaProducer, accepted: Accepted) -> None:
        try:
            await producer.send_and_wait(accepted.topic, key=accepted.key.encode(),
                                         value=orjson.dumps(accepted.value))
        except Exception as exc:  # the relay publishes it after the grace
            log.debug("eager publish of outbox row %s failed: %r", accepted.outbox_id, exc)
            self._keeper.failed(producer, exc)
            if self._keeper.spent:
                self._wake.set()  # run replaces it
            return
        self._acked.append((accepted.outbox_id, datetime.now(UTC)))
        self._wake.set()

    async def run(self) -> None:
        """Keep a producer and mark acknowledged rows, until cancelled."""
        try:
            await self._keeper.start()
            while True:
                await self._wake.wait()
                await asyncio.sleep(MARK_INTERVAL)  # gather a batch
                self._wake.clear()
                await self._mark()
                if self._keeper.spent:
                    await self._keeper.current()  # meanwhile the relay publishes
        finally:
            await self._stop()

    async def _mark(self) -> None:
        acked, self._acked = self._acked, []
        if not acked:
            return
        ids, times = zip(*acked, strict=True)
        try:
            await self._pool.execute(
                """UPDATE outbox o SET published_at = a.at
                   FROM unnest($1::bigint[], $2::timestamptz[]) AS a(id, at)
                   WHERE o.id = a.id""", list(ids), list(times))
        except (asyncpg.PostgresError, OSError) as exc:
            # left unmarked, the relay sends them again after the grace: duplicates only
            log.warning("marking %d eagerly published outbox rows failed: %r", len(acked), exc)

    async def _stop(self) -> None:
        if self._sending:
            await asyncio.wait(self._sending, timeout=5)
        with contextlib.suppress(Exception):
            await self._mark()
        await self._keeper.stop()

