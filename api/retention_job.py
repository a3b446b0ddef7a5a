"""Runs retention every ``GAVEL_RESULTS_RETENTION_INTERVAL`` seconds, on one API
process at a time (a Postgres advisory lock held on its own connection)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import asyncpg

from api.leadership import lead_forever
from gavel.retention import Deleted, delete_expired

log = logging.getLogger(__name__)
LEADER_LOCK = 0x6761_7665_6C_52
# a standby process checks at least this often whether the leader went away
_STANDBY_POLL_SECONDS = 60.0


class RetentionJob:
    def __init__(self, pool: asyncpg.Pool, dsn: str, older_than: timedelta, interval: float,
                 batch: int) -> None:
        self._pool = pool
        self._dsn = dsn
        self._older_than = older_than
        self._interval = interval
        self._batch = batch

    async def run(self) -> None:
        """Run until cancelled; survives Postgres restarts."""
        await lead_forever("retention", self._dsn, LEADER_LOCK, self._lead,
                           standby_poll=min(self._interval, _STANDBY_POLL_SECONDS),
                           retry_delay=10)

    async def _lead(self, conn: asyncpg.Connection) -> None:
        while True:
            # the lock lives as long as this connection: a broken one raises here
            # and the job competes for leadership again
            await conn.execute("SELECT 1")
            await self.run_once()
            await asyncio.sleep(self._interval)

    async def run_once(self) -> Deleted:
        began = time.monotonic()
        deleted = await delete_expired(self._pool, self._older_than, self._batch)
        log.info("retention: deleted %d evaluations and %d audits finished more than %s ago "
                 "(%d batches, %.1fs)", deleted.evaluations, deleted.audits, self._older_than,
                 deleted.batches, time.monotonic() - began)
        return deleted
