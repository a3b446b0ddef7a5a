"""Keeps the group index current: a Postgres snapshot, then ``gavel.group-changes``.

Every worker reads all group changes (manual assignment, no consumer group). The end
offsets are taken before the snapshot, so no change can fall between the two; changes
the snapshot already reflects are skipped by revision.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from gavel.group_snapshot import load_group, load_snapshots
from gavel.kafka import make_consumer
from gavel.settings import KafkaSettings
from worker.index import GroupIndex

log = logging.getLogger(__name__)


class GroupSync:
    def __init__(self, pool: asyncpg.Pool, kafka: KafkaSettings, index: GroupIndex) -> None:
        self._pool = pool
        self._kafka = kafka
        self.index = index
        self._changed = asyncio.Condition()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.applied = 0

    async def start(self) -> None:
        topic = self._kafka.topic_group_changes
        consumer = make_consumer(self._kafka, group_id=None)
        await consumer.start()
        self._consumer = consumer
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps) if tps else {}
        await self.load_all()
        for tp, offset in ends.items():
            consumer.seek(tp, offset)
        self._task = asyncio.create_task(self._follow(), name="group-sync")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer:
            await self._consumer.stop()

    async def load_all(self) -> None:
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                                  readonly=True):
            orgs = await conn.fetch("SELECT id, name, revision FROM orgs")
            snapshots = await load_snapshots(conn, "true")
        by_org: dict[str, list] = {o["name"]: [] for o in orgs}
        for snapshot in snapshots:
            by_org[snapshot["org"]].append(snapshot)
        for org in orgs:
            self.index.load_org(org["name"], org["revision"], by_org[org["name"]])
        log.info("group index loaded: %d orgs, %d groups", len(orgs), len(snapshots))

    async def load_org(self, org: str) -> bool:
        """(Re)load one org from Postgres; False if it does not exist."""
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                                  readonly=True):
            revision = await conn.fetchval("SELECT revision FROM orgs WHERE name = $1", org)
            if revision is None:
                return False
            snapshots = await load_snapshots(conn, "g.org_id = (SELECT id FROM orgs "
                                                   "WHERE name = $1)", org)
        current = self.index.revision(org)
        if current is None or current < revision:
            self.index.load_org(org, revision, snapshots)
        return True

    async def ensure_current(self, org: str, revision: int | None, timeout: float = 5.0) -> bool:
        """Make sure the index knows ``org`` at least at ``revision``; False if no such org."""
        current = self.index.revision(org)
        if current is None:
            return await self.load_org(org)
        if revision is None or current >= revision:
            return True
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(
                    lambda: (self.index.revision(org) or 0) >= revision), timeout)
                return True
            except TimeoutError:
                pass
        log.warning("group changes of %s lag behind revision %d; reloading from Postgres",
                    org, revision)
        return await self.load_org(org)

    async def _follow(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=1000)
            changed = False
            for messages in batch.values():
                for message in messages:
                    try:
                        change = orjson.loads(message.value)
                        if change.get("reload"):
                            change = await self._with_snapshot(change)
                        changed |= self.index.apply_change(change)
                    except (ValueError, KeyError, TypeError, AttributeError):
                        log.exception("skipping malformed group change at offset %d",
                                      message.offset)
            if changed:
                self.applied += 1
                async with self._changed:
                    self._changed.notify_all()

    async def _with_snapshot(self, change: dict[str, Any]) -> dict[str, Any]:
        """A change announced without its snapshot (too large for a message), with the
        group as Postgres has it now: at or past the change's revision, which later
        changes replace in turn. Postgres out of reach holds up the changes after it."""
        if change["revision"] <= (self.index.revision(change["org"]) or 0):
            return change  # already reflected; apply_change skips it
        delay = 0.5
        while True:
            try:
                group = await load_group(self._pool, change["groupId"])
                break
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("loading group %s for its change failed (%r); retrying in %.1fs",
                            change["groupId"], exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
        return {**change, "group": group, "deleted": group is None}
