"""The transactional outbox: rows written beside the change they announce.

``enqueue`` must run inside the caller's transaction; the ``NOTIFY`` it sends is
delivered at commit and wakes the relay.
"""

from __future__ import annotations

from typing import Any

import asyncpg

CHANNEL = "gavel_outbox"


async def enqueue(conn: asyncpg.Connection, topic: str, key: str, value: dict[str, Any]) -> int:
    outbox_id = await conn.fetchval(
        "INSERT INTO outbox (topic, key, value) VALUES ($1, $2, $3) RETURNING id",
        topic, key, value)
    await conn.execute(f"NOTIFY {CHANNEL}")
    return int(outbox_id)


async def enqueue_spread(conn: asyncpg.Connection,
                         rows: list[tuple[str, str, dict[str, Any], int]]) -> None:
    """Rows (topic, key, value, spread) that the relay sends to partition (spread mod the
    topic's partitions) rather than by their key: numbered in order, they take the
    partitions in turn."""
    if not rows:
        return
    await conn.executemany(
        "INSERT INTO outbox (topic, key, value, spread) VALUES ($1, $2, $3, $4)", rows)
    await conn.execute(f"NOTIFY {CHANNEL}")


async def backlog(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
