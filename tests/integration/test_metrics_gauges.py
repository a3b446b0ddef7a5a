"""The gauges read from Postgres at scrape time, in a database of their own (no relay
publishes its outbox, no planner touches its audits)."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from gavel.db import create_pool
from gavel.metrics import refresh_database_gauges, render
from gavel.settings import DatabaseSettings
from tests.helpers import migrated_database


@pytest_asyncio.fixture
async def own_pool(stack_env: dict[str, str]) -> AsyncIterator[asyncpg.Pool]:
    name = f"gavel_gauges_{uuid.uuid4().hex[:8]}"
    async with migrated_database(stack_env["GAVEL_DATABASE_URL"], name) as url:
        pool = await create_pool(DatabaseSettings(url=url, pool_min=1, pool_max=2))
        try:
            yield pool
        finally:
            await pool.close()


def gauges() -> dict[str, float]:
    text = render(with_database=True).decode()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
            if s.name in ("gavel_outbox_backlog", "gavel_audits_running")}


async def test_backlog_and_running_audits_are_read_at_scrape(own_pool: asyncpg.Pool) -> None:
    await own_pool.executemany(
        "INSERT INTO outbox (topic, key, value, published_at) VALUES ('t', 'k', '{}', $1)",
        [(None,), (None,), (None,), (datetime.now(UTC),)])
    org_id = await own_pool.fetchval("INSERT INTO orgs (name) VALUES ('gauges') RETURNING id")
    for status in ("running", "running", "queued", "completed"):
        await own_pool.execute(
            "INSERT INTO audits (id, org_id, target, trigger, status) "
            "VALUES ($1, $2, 'org', 'manual', $3)", uuid.uuid4(), org_id, status)
    await refresh_database_gauges(own_pool)
    assert gauges() == {"gavel_outbox_backlog": 3, "gavel_audits_running": 2}

    await own_pool.execute("UPDATE outbox SET published_at = now()")
    await refresh_database_gauges(own_pool)
    assert gauges() == {"gavel_outbox_backlog": 0, "gavel_audits_running": 2}


async def test_postgres_down_shows_a_gap_not_a_stale_value(own_pool: asyncpg.Pool) -> None:
    await refresh_database_gauges(own_pool)
    await own_pool.close()
    await refresh_database_gauges(own_pool)
    assert all(math.isnan(v) for v in gauges().values()) and len(gauges()) == 2
