"""An account's current state is its latest scan, every chunk of it: the store adds each
chunk stored to what the earlier ones left, whatever order they come in, and a new scan
starts over. The counts it keeps are those a rebuild from the current state computes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from gavel import compliance_summary
from gavel.compliance_summary import COUNT_TABLES
from gavel.events import AccountEvent, envelope
from gavel.orgs import create_org
from gavel.retention import delete_expired
from worker.evaluate import PackResult, Violation
from worker.index import Applicable, GroupRef
from worker.store import Finished, store_batch

T0 = datetime(2026, 5, 1, tzinfo=UTC)
ACCOUNT = "aws-prod"


def _chunk(org: str, org_id: int, scan_id: str, chunk: int, chunks: int, *urns: str,
           minutes: int = 0) -> Finished:
    """Chunk ``chunk`` of ``chunks`` of a scan, each of ``urns`` a public bucket."""
    evaluation_id = uuid.uuid4()
    event = AccountEvent.model_validate(envelope(
        org, evaluationId=str(evaluation_id), account=ACCOUNT, provider="aws", scanId=scan_id,
        chunk=chunk, chunks=chunks,
        resources=[{"urn": urn, "type": "aws:s3/bucket:Bucket"} for urn in urns]))
    applicable = Applicable(0, "baseline", 1, "1.0.0", {}, (GroupRef("default", "mandatory"),))
    pack = PackResult(applicable, violations=[
        Violation(["default"], "baseline", 1, "1.0.0", "no-public-buckets", "mandatory", urn,
                  "bucket is public", None) for urn in urns])
    return Finished(evaluation_id, event.eventId, org_id, "account", ACCOUNT, "scan",
                    T0 + timedelta(minutes=minutes), len(urns),
                    "mandatory" if urns else "pass", False, [pack], "test", event=event,
                    scan=(scan_id, chunk, chunks))


@pytest.fixture
async def org(pool: asyncpg.Pool) -> AsyncIterator[tuple[str, int]]:
    name = f"org-{uuid.uuid4().hex[:8]}"
    org_id, _ = await create_org(pool, name)
    yield name, org_id
    await pool.execute("DELETE FROM orgs WHERE id = $1", org_id)


async def _store(pool: asyncpg.Pool, *batch: Finished) -> None:
    async with pool.acquire() as conn:
        await store_batch(conn, list(batch))


async def _current(pool: asyncpg.Pool, org_id: int) -> list[str]:
    rows = await pool.fetch("SELECT urn FROM current_violations WHERE org_id = $1 ORDER BY urn",
                            org_id)
    return [r["urn"] for r in rows]


async def _counts(pool: asyncpg.Pool, org_id: int) -> dict[str, list[tuple[Any, ...]]]:
    found = {}
    for table in COUNT_TABLES:
        rows = await pool.fetch(f"SELECT * FROM {table.name} WHERE org_id = $1", org_id)
        found[table.name] = sorted(tuple(r.values()) for r in rows)
    return found


async def _pack_counts(pool: asyncpg.Pool, org_id: int) -> tuple[int, int, int]:
    """Entities that ran the pack under any group, those passing, and the mandatory
    violations they left."""
    pack = await pool.fetchrow(
        "SELECT evaluated, passing FROM compliance_pack_counts WHERE org_id = $1 "
        "AND group_name = '' AND pack = 'baseline'", org_id)
    mandatory = await pool.fetchval(
        "SELECT coalesce(sum(mandatory), 0) FROM compliance_policy_counts WHERE org_id = $1 "
        "AND group_name = ''", org_id)
    return pack["evaluated"], pack["passing"], mandatory


async def _kept_as_rebuilt(pool: asyncpg.Pool, org_id: int) -> None:
    kept = await _counts(pool, org_id)
    async with pool.acquire() as conn:
        await compliance_summary.rebuild(conn, org_id)
    assert await _counts(pool, org_id) == kept


async def test_the_chunks_of_a_scan_add_up_to_the_current_state(
        pool: asyncpg.Pool, org: tuple[str, int]) -> None:
    name, org_id = org
    await _store(pool, _chunk(name, org_id, "s1", 1, 3, "b1", "b2", minutes=1))
    assert await _current(pool, org_id) == ["b1", "b2"]
    # chunk 3 before chunk 2, which then comes in with an earlier time than chunk 3's
    await _store(pool, _chunk(name, org_id, "s1", 3, 3, "b5", minutes=3))
    await _store(pool, _chunk(name, org_id, "s1", 2, 3, "b3", "b4", minutes=2))
    assert await _current(pool, org_id) == ["b1", "b2", "b3", "b4", "b5"]
    # an account is one entity whatever its chunks: it ran the pack once, and failed
    assert await _pack_counts(pool, org_id) == (1, 0, 5)
    assert await pool.fetchval("SELECT count(*) FROM current_pack_results "
                               "WHERE org_id = $1", org_id) == 3
    await _kept_as_rebuilt(pool, org_id)

    # a chunk sent again replaces what it found before
    await _store(pool, _chunk(name, org_id, "s1", 2, 3, minutes=4))
    assert await _current(pool, org_id) == ["b1", "b2", "b5"]
    assert await _pack_counts(pool, org_id) == (1, 0, 3)

    # the next scan starts over, chunk by chunk; a late chunk of the one before is history
    await _store(pool, _chunk(name, org_id, "s2", 1, 2, minutes=10),
                 _chunk(name, org_id, "s2", 2, 2, "b9", minutes=11))
    await _store(pool, _chunk(name, org_id, "s1", 1, 3, "b7", minutes=5))
    assert await _current(pool, org_id) == ["b9"]
    assert await _pack_counts(pool, org_id) == (1, 0, 1)
    await _store(pool, _chunk(name, org_id, "s3", 1, 2, minutes=20))
    assert await _current(pool, org_id) == []
    assert await _pack_counts(pool, org_id) == (1, 1, 0)
    await _kept_as_rebuilt(pool, org_id)


async def test_retention_keeps_the_chunks_of_the_latest_scan(
        pool: asyncpg.Pool, org: tuple[str, int]) -> None:
    name, org_id = org
    old = [_chunk(name, org_id, "s1", n, 2, f"b{n}", minutes=n) for n in (1, 2)]
    latest = [_chunk(name, org_id, "s2", n, 2, f"c{n}", minutes=10 + n) for n in (1, 2)]
    await _store(pool, *old)
    await _store(pool, *latest)
    await pool.execute("UPDATE evaluations SET finished_at = now() - interval '60 days' "
                       "WHERE org_id = $1", org_id)

    deleted = await delete_expired(pool, timedelta(days=30), batch=10)

    assert deleted.evaluations == 2
    left = await pool.fetch("SELECT id FROM evaluations WHERE org_id = $1", org_id)
    assert {r["id"] for r in left} == {d.evaluation_id for d in latest}
    assert await _current(pool, org_id) == ["c1", "c2"]
