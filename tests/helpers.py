"""Small helpers shared by tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from gavel.migrations import migrate


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


@asynccontextmanager
async def migrated_database(base_url: str, name: str) -> AsyncIterator[str]:
    """Create database ``name`` beside ``base_url``, migrate it, drop it afterwards."""
    admin = await asyncpg.connect(base_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = base_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
