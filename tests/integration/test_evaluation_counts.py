"""The evaluation history's counts by the hour and day received (``evaluation_counts``,
kept by a deferred trigger and by the worker's store): they follow every write, and a
page by number starts at the hour that holds it, from either end of the list."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from gavel import evaluation_counts, result_pages, result_queries
from gavel.migrations import migrate
from gavel.orgs import create_org
from gavel.settings import Settings
from tests.helpers import assert_evaluations_counted, pool_migrated_before
from worker.store import Finished, store_batch

T0 = datetime(2025, 3, 9, 21, 30, tzinfo=UTC)
KINDS = ("preview", "update", "refresh", "scan")

def _rows(n: int, spread: timedelta, first: int = 0) -> list[tuple[str, str, str, datetime]]:
    """(entity type, key, kind, received at) of ``n`` evaluations, several received at
    the same moment (``spread`` apart in groups of three)."""
    rows = []
    for i in range(first, first + n):
        entity_type = "account" if i % 4 == 0 else "stack"
        kind = "scan" if entity_type == "account" else KINDS[i % 3]
        key = f"acct-{i % 5}" if entity_type == "account" else f"proj/stack-{i % 7}"
        rows.append((entity_type, key, kind, T0 + spread * (i // 3)))
    return rows


async def _receive(db: asyncpg.Pool | asyncpg.Connection, org_id: int,
                   rows: Iterable[tuple[str, str, str, datetime]]) -> list[uuid.UUID]:
    rows = list(rows)
    ids = [uuid.uuid4() for _ in rows]
    await db.execute(
        """INSERT INTO evaluations (id, org_id, event_id, entity_type, entity_key, kind,
                                    status, occurred_at, received_at)
           SELECT id, $2, id::text, t, k, kind, 'pending', at, at
           FROM unnest($1::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
                AS u(id, t, k, kind, at)""",
        ids, org_id, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
        [r[3] for r in rows])
    return ids


async def test_the_counts_follow_every_write(pool: asyncpg.Pool) -> None:
    org_id, _ = await create_org(pool, f"org-{uuid.uuid4().hex[:8]}")
    try:
        ids = await _receive(pool, org_id, _rows(60, timedelta(minutes=41)))
        await assert_evaluations_counted(pool, org_id)
        # written and deleted in one transaction, or rolled back: nothing counted
        async with pool.acquire() as conn:
            async with conn.transaction():
                gone = await _receive(conn, org_id, _rows(5, timedelta(hours=30), 60))
                await conn.execute("DELETE FROM evaluations WHERE id = ANY($1)", gone)
            with pytest.raises(RuntimeError):
                async with conn.transaction():
                    await _receive(conn, org_id, _rows(5, timedelta(hours=50), 65))
                    raise RuntimeError("rolled back")
        await assert_evaluations_counted(pool, org_id)
        # moved to another hour and kind, finished (not counted by status), deleted: an
        # hour left empty has no row
        await pool.execute("UPDATE evaluations SET received_at = received_at + interval "
                           "'3 hours', kind = 'destroy' WHERE id = ANY($1)", ids[:7])
        await pool.execute("UPDATE evaluations SET status = 'finished', outcome = 'pass', "
                           "finished_at = now() WHERE id = ANY($1)", ids[7:20])
        await pool.execute("DELETE FROM evaluations WHERE id = ANY($1)", ids[20:40])
        await assert_evaluations_counted(pool, org_id)
        assert await pool.fetchval("SELECT count(*) FROM evaluation_counts "
                                   "WHERE org_id = $1 AND evaluations <= 0", org_id) == 0

        # writers of the same hours at once, each committing a few times
        async def write(first: int) -> None:
            async with pool.acquire() as conn:
                for n in range(4):
                    async with conn.transaction():
                        await _receive(conn, org_id, _rows(9, timedelta(minutes=7),
                                                           first + 9 * n))

        await asyncio.gather(*(write(1000 + 100 * w) for w in range(4)))
        await assert_evaluations_counted(pool, org_id)
        # counted anew, as after rows written with the trigger disabled
        await pool.execute("UPDATE evaluation_counts SET evaluations = 7 WHERE org_id = $1 "
                           "AND span = 'day'", org_id)
        await pool.execute("DELETE FROM evaluation_counts WHERE ctid IN (SELECT ctid FROM "
                           "evaluation_counts WHERE org_id = $1 AND span = 'hour' LIMIT 3)",
                           org_id)
        async with pool.acquire() as conn:
            await evaluation_counts.recount(conn, org_id)
        await assert_evaluations_counted(pool, org_id)
    finally:
        await pool.execute("DELETE FROM orgs WHERE id = $1", org_id)
    assert await pool.fetchval("SELECT count(*) FROM evaluation_counts WHERE org_id = $1",
                               org_id) == 0


def _finished(org_id: int, evaluation_id: uuid.UUID, entity_type: str, key: str,
              kind: str) -> Finished:
    return Finished(evaluation_id, str(evaluation_id), org_id, entity_type, key, kind, T0, 1,
                    "pass", False, [], "test")


async def test_the_store_counts_what_it_inserts(pool: asyncpg.Pool) -> None:
    """The worker's store counts the evaluations it inserts (not those accepted over
    HTTP before, which it finishes), a batch at a time, beside writers the trigger
    counts; delivered again, a batch adds nothing."""
    org_id, _ = await create_org(pool, f"org-{uuid.uuid4().hex[:8]}")
    try:
        accepted = _rows(40, timedelta(minutes=13))
        ids = await _receive(pool, org_id, accepted)

        async def store(first: int) -> None:
            async with pool.acquire() as conn:
                for n in range(5):
                    some = range(first + 4 * n, first + 4 * n + 4)
                    batch = [_finished(org_id, ids[i], *accepted[i][:3]) for i in some] + [
                        _finished(org_id, uuid.uuid4(), entity_type, key, kind)
                        for entity_type, key, kind, _ in _rows(6, timedelta(0), first + n)]
                    await store_batch(conn, batch)
                    await store_batch(conn, batch[::2])

        async def receive() -> None:
            for n in range(5):
                await _receive(pool, org_id, _rows(6, timedelta(minutes=3), 100 + 6 * n))

        await asyncio.gather(store(0), store(20), receive())
        assert await pool.fetchval("SELECT count(*) FROM evaluations WHERE org_id = $1",
                                   org_id) == 40 + 2 * 5 * 6 + 30
        await assert_evaluations_counted(pool, org_id)
    finally:
        await pool.execute("DELETE FROM orgs WHERE id = $1", org_id)


async def test_migration_counts_the_evaluations_received_before(
        stack_env: dict[str, str], settings: Settings, session_id: str) -> None:
    async with pool_migrated_before(stack_env["GAVEL_DATABASE_URL"], settings.database,
                                    f"gavel_test_{session_id}_received", 16) as pool:
        org_ids = [(await create_org(pool, name))[0] for name in ("one", "two")]
        for n, org_id in enumerate(org_ids):
            await _receive(pool, org_id, _rows(40 + n, timedelta(minutes=23 + n)))
        async with pool.acquire() as conn:
            await migrate(conn)
        for org_id in org_ids:
            await assert_evaluations_counted(pool, org_id)
            assert await pool.fetchval("SELECT count(DISTINCT received) FROM evaluation_counts "
                                       "WHERE org_id = $1 AND span = 'day'", org_id) == 2


@pytest.mark.parametrize("filters", [
    {}, {"entityType": "account"}, {"kind": "update"},
    {"entityType": "stack", "kind": "refresh"},
    # windows: bounds inside an hour (at a moment several rows share), on an hour, on a day
    {"since": T0 + timedelta(minutes=100)}, {"until": datetime(2025, 3, 11, 22, tzinfo=UTC)},
    {"until": T0 + timedelta(hours=2)},
    {"since": datetime(2025, 3, 10, tzinfo=UTC), "until": datetime(2025, 3, 12, 3, 17,
                                                                   tzinfo=UTC),
     "kind": "update"},
    {"since": T0 + timedelta(minutes=30), "until": T0 + timedelta(minutes=44, seconds=30),
     "entityType": "stack"},
    # not counted by: skipped to from the start
    {"outcome": "pass"}])
async def test_history_pages_by_number_start_at_their_hour(
        pool: asyncpg.Pool, filters: dict[str, Any]) -> None:
    """Pages by number of the history, newest first, from either end: evaluations over
    four days (UTC), many received at the same moment, with a day and a half between
    them without any."""
    org_id, _ = await create_org(pool, f"org-{uuid.uuid4().hex[:8]}")
    try:
        rows = [*_rows(150, timedelta(minutes=4)), *_rows(60, timedelta(minutes=53), 150),
                *[(t, k, kind, at + timedelta(days=2)) for t, k, kind, at in
                  _rows(90, timedelta(seconds=20), 210)]]
        ids = await _receive(pool, org_id, rows)
        await pool.execute("UPDATE evaluations SET status = 'finished', outcome = 'pass' "
                           "WHERE id = ANY($1)", ids[::3])
        query = result_queries.evaluation_query(org_id, filters)
        assert (query.received is None) == ("outcome" in filters)
        expected = [r["id"] for r in await pool.fetch(
            f"SELECT id FROM evaluations t WHERE {query.where.sql} "
            "ORDER BY received_at DESC, id", *query.params)]
        assert 0 < len(expected) < len(rows) or not filters
        for size in (7, 40):
            for offset in range(0, len(expected) + size, size):
                page = await result_pages.fetch_page(pool, query, offset, size)
                assert [r["id"] for r in page.rows] == expected[offset:offset + size], \
                    (size, offset)
                if query.received is not None:
                    assert (page.total, page.exact) == (len(expected), True)
    finally:
        await pool.execute("DELETE FROM orgs WHERE id = $1", org_id)
