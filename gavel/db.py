"""The asyncpg pool, with jsonb decoded to Python values."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

import asyncpg
import orjson

from gavel.settings import DatabaseSettings

_JSONB_VERSION = b"\x01"


def _jsonb_encode(value: object) -> bytes:
    return _JSONB_VERSION + orjson.dumps(value)


def _jsonb_decode(data: bytes) -> object:
    return orjson.loads(data[1:])


def org_lock_key(org_id: int) -> int:
    """The second key of an advisory lock of the org (the first names what it guards):
    lock keys are ints, org ids bigints."""
    return org_id & 0x7FFF_FFFF


# the same, in SQL, of a column ``org_id`` (the trigger counting evaluations, migration
# 0016, spells it out)
ORG_LOCK_KEY_SQL = "(org_id & 2147483647)::int"


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """The rows as ``width`` columns, the arrays a statement ``unnest``s (empty ones when
    there are no rows)."""
    return [[row[i] for row in rows] for i in range(width)]


def rows_touched(status: str) -> int:
    """The rows an INSERT, UPDATE or DELETE touched, from the status asyncpg's
    ``execute`` answers ("INSERT 0 1", "DELETE 3")."""
    return int(status.rsplit(" ", 1)[-1])


async def _init_connection(conn: asyncpg.Connection) -> None:
    # binary codecs: COPY (bulk writes) needs them, and they skip a text round trip
    await conn.set_type_codec("json", encoder=orjson.dumps, decoder=orjson.loads,
                              schema="pg_catalog", format="binary")
    await conn.set_type_codec("jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode,
                              schema="pg_catalog", format="binary")


@asynccontextmanager
async def transaction_by_key(conn: asyncpg.Connection, first: str = "") -> AsyncIterator[None]:
    """A transaction whose statements all find their rows by key, begun in one round
    trip with how they are planned: each once per connection (a generic plan suits any
    batch; planning can cost more than running), and never as a sequential scan. A
    plan made while the tables were small or never analyzed, as in a fresh
    installation, would otherwise scan whole tables, and keep doing so as they grow,
    until autovacuum analyzes them. ``first``: statements (without parameters) run in
    the same round trip, before any other. Rolled back if the block raises."""
    try:
        await conn.execute("BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; "
                           f"SET LOCAL enable_seqscan = off; {first}")
        yield
    except BaseException:
        if not conn.is_closed():
            with suppress(Exception):
                await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


class PooledConnection(asyncpg.Connection):
    """Pool connections keep no session state (LISTEN, session locks and session
    settings live on dedicated connections), so handing one back needs no reset
    round trip; an open transaction is still rolled back."""

    def get_reset_query(self) -> str:
        return ""


async def create_pool(settings: DatabaseSettings) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(settings.url, min_size=settings.pool_min,
                                     max_size=settings.pool_max, init=_init_connection,
                                     connection_class=PooledConnection)
    assert pool is not None
    return pool


@asynccontextmanager
async def pool_context(settings: DatabaseSettings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings)
    try:
        yield pool
    finally:
        await pool.close()
