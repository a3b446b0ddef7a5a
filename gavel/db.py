"""The asyncpg pool, with jsonb decoded to Python values."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson

from gavel.settings import DatabaseSettings


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(type_name, encoder=_dumps, decoder=orjson.loads,
                                  schema="pg_catalog")


async def create_pool(settings: DatabaseSettings) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(settings.url, min_size=settings.pool_min,
                                     max_size=settings.pool_max, init=_init_connection)
    assert pool is not None
    return pool


@asynccontextmanager
async def pool_context(settings: DatabaseSettings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings)
    try:
        yield pool
    finally:
        await pool.close()
