"""Starts queued audits when they are due, and queues the scheduled account scans.

One planner is active at a time (a Postgres advisory lock held on its listening
connection); a new request wakes it through ``NOTIFY``, otherwise it looks again
within a second, which is also when a coalescing window ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import asyncpg

from api.leadership import lead_forever
from gavel.audit_planning import plan_audit
from gavel.audits import NOTIFY_CHANNEL, SCHEDULE_TARGET, request_audit
from gavel.settings import Settings

log = logging.getLogger(__name__)
_LEADER_LOCK = 0x6761_7665_6C_02
_SCHEDULE_CHECK_SECONDS = 5.0

_DUE_SCHEDULED_SCANS = """
SELECT o.id FROM orgs o
WHERE EXISTS (SELECT 1 FROM accounts a WHERE a.org_id = o.id AND a.scheduled_scan_enabled)
  AND NOT EXISTS (SELECT 1 FROM audits au WHERE au.org_id = o.id
                  AND au.target = 'schedule'
                  AND au.created_at > now() - make_interval(secs => $1))
"""


class AuditPlanner:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, poll_interval: float = 1.0) -> None:
        self._pool = pool
        self._settings = settings
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._next_schedule_check = 0.0

    async def run(self) -> None:
        """Run until cancelled; survives Postgres restarts."""
        await lead_forever("audit planner", self._settings.database.url, _LEADER_LOCK,
                           self._lead, standby_poll=self._poll_interval, retry_delay=1)

    async def _lead(self, conn: asyncpg.Connection) -> None:
        await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
        while True:
            await self.queue_scheduled_scans()
            await self._start_due_audits()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)

    async def _start_due_audits(self) -> None:
        due = await self._pool.fetch(
            "SELECT id FROM audits WHERE status = 'queued' AND not_before <= now() "
            "ORDER BY not_before LIMIT 20")
        for row in due:
            await plan_audit(self._pool, row["id"], self._settings.kafka.topic_audit_chunks,
                             self._settings.audit.chunk_size)

    async def queue_scheduled_scans(self) -> None:
        """Queue a scan of the scheduled accounts of each org whose last one is older
        than ``GAVEL_AUDIT_INTERVAL``."""
        interval = self._settings.audit.interval
        if interval <= 0 or time.monotonic() < self._next_schedule_check:
            return
        self._next_schedule_check = time.monotonic() + min(_SCHEDULE_CHECK_SECONDS, interval)
        for row in await self._pool.fetch(_DUE_SCHEDULED_SCANS, interval):
            async with self._pool.acquire() as conn, conn.transaction():
                await request_audit(conn, row["id"], target=SCHEDULE_TARGET,
                                    trigger="schedule", delay=0)
