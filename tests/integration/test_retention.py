"""Retention against the real Postgres: old history goes in bounded batches, each
entity's latest evaluation and recent rows stay, one process runs it at a time."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from api.retention_job import LEADER_LOCK, RetentionJob
from gavel.evaluation_counts import LOCK_CLASS
from gavel.retention import delete_expired
from gavel.settings import Settings
from tests.helpers import assert_evaluations_counted
from tests.policy_setup import org_id

RETENTION = timedelta(days=30)


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


async def evaluation(pool: asyncpg.Pool, oid: int, entity: str, days: float | None, *,
                     latest: bool = False, violations: int = 0) -> uuid.UUID:
    """An evaluation of stack ``entity`` finished ``days`` ago (None: still pending)."""
    evaluation_id = uuid.uuid4()
    finished_at = None if days is None else days_ago(days)
    await pool.execute(
        """INSERT INTO evaluations (id, org_id, event_id, entity_type, entity_key, kind, status,
                                    outcome, occurred_at, finished_at)
           VALUES ($1, $2, $3, 'stack', $4, 'update', $5, $6, $7, $8)""",
        evaluation_id, oid, str(evaluation_id), entity,
        "pending" if finished_at is None else "finished",
        None if finished_at is None else "pass", finished_at or days_ago(0), finished_at)
    for _ in range(violations):
        await pool.execute(
            """INSERT INTO violations (evaluation_id, org_id, entity_type, entity_key, groups,
                                       pack, pack_version, version_tag, policy, level, message,
                                       observed_at)
               VALUES ($1, $2, 'stack', $3, '{g}', 'p', 1, 't', 'x', 'advisory', 'm', $4)""",
            evaluation_id, oid, entity, finished_at)
    if latest:
        await pool.execute(
            """INSERT INTO latest_evaluations (org_id, entity_type, entity_key, evaluation_id,
                                               occurred_at, finished_at)
               VALUES ($1, 'stack', $2, $3, $4, $4)
               ON CONFLICT (org_id, entity_type, entity_key)
               DO UPDATE SET evaluation_id = EXCLUDED.evaluation_id""",
            oid, entity, evaluation_id, finished_at)
    return evaluation_id


async def audit(pool: asyncpg.Pool, oid: int, status: str, days: float) -> uuid.UUID:
    audit_id = uuid.uuid4()
    finished = days_ago(days) if status in ("completed", "failed") else None
    await pool.execute(
        """INSERT INTO audits (id, org_id, target, trigger, status, created_at, started_at,
                               finished_at)
           VALUES ($1, $2, 'org', 'manual', $3, $4, $4, $5)""",
        audit_id, oid, status, days_ago(days + 0.01), finished)
    return audit_id


async def remaining(pool: asyncpg.Pool, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    rows = await pool.fetch("SELECT id FROM evaluations WHERE id = ANY($1::uuid[])", ids)
    return {r["id"] for r in rows}


async def test_old_history_goes_latest_and_recent_stay(pool: asyncpg.Pool, new_org) -> None:
    org, _ = await new_org()
    oid = await org_id(pool, org)
    # stale: no event for 31 days; its last evaluation is the entity's current state
    stale = [await evaluation(pool, oid, "web/stale", d, violations=2) for d in (45, 40, 35)]
    stale_latest = await evaluation(pool, oid, "web/stale", 31, latest=True, violations=1)
    busy_old = await evaluation(pool, oid, "web/busy", 60, violations=3)
    busy_recent = await evaluation(pool, oid, "web/busy", 29)
    busy_latest = await evaluation(pool, oid, "web/busy", 0.001, latest=True)
    # an entity whose latest evaluation is not recorded keeps its whole history
    unrecorded = await evaluation(pool, oid, "web/unrecorded", 50)
    pending = await evaluation(pool, oid, "web/busy", None)
    old_done = [await audit(pool, oid, "completed", 40), await audit(pool, oid, "failed", 31)]
    kept_audits = [await audit(pool, oid, "completed", 10), await audit(pool, oid, "running", 40),
                   await audit(pool, oid, "queued", 40)]

    deleted = await delete_expired(pool, RETENTION, batch=2)

    expired = [*stale, busy_old]
    kept = [stale_latest, busy_recent, busy_latest, unrecorded, pending]
    assert await remaining(pool, expired + kept) == set(kept)
    assert (deleted.evaluations, deleted.audits) == (4, 2)
    # 4 evaluations in batches of 2 need a third, empty statement to know they are done;
    # 2 audits likewise: the batch size bounds every statement
    assert deleted.batches == 3 + 2
    assert await pool.fetchval(
        "SELECT count(*) FROM violations WHERE evaluation_id = ANY($1::uuid[])", expired) == 0
    assert await pool.fetchval(
        "SELECT count(*) FROM violations WHERE evaluation_id = $1", stale_latest) == 1
    left = await pool.fetch("SELECT id FROM audits WHERE org_id = $1", oid)
    assert {r["id"] for r in left} == set(kept_audits)
    assert not set(old_done) & {r["id"] for r in left}

    again = await delete_expired(pool, RETENTION, batch=2)
    assert (again.evaluations, again.audits) == (0, 0)


async def test_batches_step_over_kept_latest_evaluations(pool: asyncpg.Pool, new_org) -> None:
    org, _ = await new_org()
    oid = await org_id(pool, org)
    # many old entities whose only evaluation is their latest, oldest of all
    kept = [await evaluation(pool, oid, f"p/s{i}", 90 - i, latest=True) for i in range(5)]
    history = [await evaluation(pool, oid, "p/many", 60 - i) for i in range(7)]
    await evaluation(pool, oid, "p/many", 1, latest=True)

    deleted = await delete_expired(pool, RETENTION, batch=3)

    assert await remaining(pool, kept + history) == set(kept)
    assert deleted.evaluations == 7
    assert deleted.batches - 1 == 3  # 3 + 3 + 1 evaluations, then the audits' one


async def test_one_process_runs_retention(pool: asyncpg.Pool, settings: Settings,
                                          new_org) -> None:
    org, _ = await new_org()
    oid = await org_id(pool, org)
    old = await evaluation(pool, oid, "x/y", 40)
    await evaluation(pool, oid, "x/y", 0.001, latest=True)
    leader = await asyncpg.connect(settings.database.url)
    task: asyncio.Task[None] | None = None
    try:
        assert await leader.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK)
        job = RetentionJob(pool, settings.database.url, RETENTION, interval=0.1, batch=100)
        task = asyncio.create_task(job.run())
        await asyncio.sleep(1.0)
        assert await remaining(pool, [old]) == {old}, "ran while another process led"
        await leader.execute("SELECT pg_advisory_unlock($1)", LEADER_LOCK)
        for _ in range(50):
            if not await remaining(pool, [old]):
                break
            await asyncio.sleep(0.1)
        assert not await remaining(pool, [old])
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await leader.close()


async def test_history_counts_stay_exact_beside_writers_of_the_same_orgs(
        pool: asyncpg.Pool, new_org) -> None:
    # retention deletes the oldest first, here the newest org's; writers that store
    # several orgs in one transaction (as the worker does, in the order of their ids)
    # commit meanwhile: each counts its orgs in order, nobody waits for another forever
    orgs = sorted([await org_id(pool, (await new_org())[0]) for _ in range(3)])
    for n, oid in enumerate(orgs):
        for i in range(30):
            await evaluation(pool, oid, f"web/s{i % 3}", 100 - 20 * n - i / 10)
        for i in range(3):
            await evaluation(pool, oid, f"web/s{i}", 1, latest=True)

    async def store(first: int) -> None:
        for _ in range(8):
            async with pool.acquire() as conn, conn.transaction():
                for oid in orgs:
                    await conn.execute(
                        """INSERT INTO evaluations (id, org_id, event_id, entity_type,
                                                    entity_key, kind, status, occurred_at)
                           SELECT id, $1, id::text, 'stack', 'web/s0', 'audit', 'pending',
                                  now()
                           FROM (SELECT gen_random_uuid() AS id
                                 FROM generate_series(1, $2)) AS g""", oid, 2 + first % 3)

    deleted, *_ = await asyncio.gather(delete_expired(pool, RETENTION, 7), store(1), store(2))
    assert deleted.evaluations == 90
    for oid in orgs:
        await assert_evaluations_counted(pool, oid)


async def test_retention_takes_the_orgs_count_locks_in_order(pool: asyncpg.Pool,
                                                              new_org) -> None:
    # the newer org's rows are the oldest, so deleted first: counted as they were
    # deleted, its lock would be held while waiting for the older org's
    first, second = sorted([await org_id(pool, (await new_org())[0]) for _ in range(2)])
    for oid, days in ((second, 90), (first, 80)):
        await evaluation(pool, oid, "web/s", days)
        await evaluation(pool, oid, "web/s", 1, latest=True)
    async with pool.acquire() as holder:
        await holder.execute("SELECT pg_advisory_lock($1, $2)", LOCK_CLASS, first)
        deleting = asyncio.create_task(delete_expired(pool, RETENTION, 10))
        waiting = None
        for _ in range(200):
            waiting = await pool.fetchval(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND classid = $1 AND objid = $2", LOCK_CLASS, first)
            if waiting is not None:
                break
            await asyncio.sleep(0.01)
        assert waiting is not None
        assert await pool.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1 "
            "AND granted AND classid = $2", waiting, LOCK_CLASS) == 0
        await holder.execute("SELECT pg_advisory_unlock($1, $2)", LOCK_CLASS, first)
    assert (await deleting).evaluations == 2
    for oid in (first, second):
        await assert_evaluations_counted(pool, oid)
