"""One active copy of a background job across API processes.

The job holds a Postgres advisory lock on a connection of its own for as long as it
runs; a standby polls for the lock. If the job fails (Postgres restarted, the
connection broke), the lock goes with the connection and every copy competes again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg

log = logging.getLogger(__name__)
Lead = Callable[[asyncpg.Connection], Awaitable[None]]


async def lead_forever(name: str, dsn: str, lock_key: int, lead: Lead, *,
                       standby_poll: float, retry_delay: float) -> None:
    """Run ``lead(conn)`` whenever this process holds ``lock_key``; until cancelled."""
    while True:
        try:
            conn = await asyncpg.connect(dsn)
            try:
                while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock_key):
                    await asyncio.sleep(standby_poll)
                await lead(conn)
            finally:
                await conn.close()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; restarting in %.0fs", name, retry_delay)
            await asyncio.sleep(retry_delay)
