"""The worker's store keeps each stack's last known resources: a deployment replaces
them, a destroy empties them and a preview leaves them, however a batch orders the
events of one stack. What it writes goes with its org."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from gavel.events import StackEvent, envelope
from gavel.orgs import create_org
from worker.evaluate import PackResult, Violation
from worker.index import Applicable, GroupRef
from worker.store import Finished, store_batch

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def _resource(name: str) -> dict[str, Any]:
    return {"urn": f"urn:pulumi:prod::web::aws:s3/bucket:Bucket::{name}",
            "type": "aws:s3/bucket:Bucket", "name": name}


def _deployed(org: str, org_id: int, stack: str, kind: str, *names: str) -> Finished:
    evaluation_id = uuid.uuid4()
    event = StackEvent.model_validate(envelope(
        org, evaluationId=str(evaluation_id), project="web", stack=stack, kind=kind,
        resources=[_resource(n) for n in names]))
    return Finished(evaluation_id, event.eventId, org_id, "stack", f"web/{stack}", kind, T0,
                    len(names), "pass", False, [], "test", event=event)


async def _resources(pool: asyncpg.Pool, org_id: int) -> dict[str, tuple[list[str], int]]:
    rows = await pool.fetch("SELECT name, resources, resource_count FROM stacks "
                            "WHERE org_id = $1", org_id)
    return {r["name"]: ([x["name"] for x in r["resources"]], r["resource_count"])
            for r in rows}


async def test_a_batch_keeps_each_stacks_last_deployed_resources(pool: asyncpg.Pool) -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    org_id, _ = await create_org(pool, org)
    try:
        async with pool.acquire() as conn:
            await store_batch(conn, [
                _deployed(org, org_id, "a", "update", "one"),
                _deployed(org, org_id, "a", "preview", "two"),
                _deployed(org, org_id, "b", "preview", "three"),
                _deployed(org, org_id, "c", "update", "one", "two"),
                _deployed(org, org_id, "c", "destroy"),
                _deployed(org, org_id, "d", "destroy"),
                _deployed(org, org_id, "d", "refresh", "three", "four"),
            ])
            assert await _resources(pool, org_id) == {
                "a": (["one"], 1), "b": ([], 0), "c": ([], 0), "d": (["three", "four"], 2)}
            await store_batch(conn, [
                _deployed(org, org_id, "a", "preview", "nine"),
                _deployed(org, org_id, "b", "refresh", "four"),
                _deployed(org, org_id, "c", "preview"),
            ])
            assert await _resources(pool, org_id) == {
                "a": (["one"], 1), "b": (["four"], 1), "c": ([], 0),
                "d": (["three", "four"], 2)}
    finally:
        await pool.execute("DELETE FROM orgs WHERE id = $1", org_id)


def _violating(org: str, org_id: int, stack: str, *urns: str) -> Finished:
    done = _deployed(org, org_id, stack, "update", *urns)
    applicable = Applicable(0, "baseline", 1, "1.0.0", {}, (GroupRef("default", "mandatory"),))
    done.packs = [PackResult(applicable, violations=[
        Violation(["default"], "baseline", 1, "1.0.0", "no-public-buckets", "mandatory", urn,
                  "bucket is public", None) for urn in urns])]
    done.outcome, done.blocking = "mandatory", True
    return done


async def _rows_of(pool: asyncpg.Pool, org_id: int) -> dict[str, int]:
    tables = ("evaluations", "violations", "latest_evaluations", "current_violations",
              "current_pack_results")
    return {t: await pool.fetchval(f"SELECT count(*) FROM {t} WHERE org_id = $1", org_id)
            for t in tables}


async def test_deleting_an_org_deletes_its_results_and_current_state(
        pool: asyncpg.Pool) -> None:
    orgs = [f"org-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    gone_id, _ = await create_org(pool, orgs[0])
    kept_id, _ = await create_org(pool, orgs[1])
    try:
        async with pool.acquire() as conn:
            for org, org_id in ((orgs[0], gone_id), (orgs[1], kept_id)):
                await store_batch(conn, [_violating(org, org_id, "a", "one", "two"),
                                         _violating(org, org_id, "b", "three")])
        stored = {"evaluations": 2, "violations": 3, "latest_evaluations": 2,
                  "current_violations": 3, "current_pack_results": 2}
        assert await _rows_of(pool, gone_id) == stored

        await pool.execute("DELETE FROM orgs WHERE id = $1", gone_id)

        assert await _rows_of(pool, gone_id) == dict.fromkeys(stored, 0)
        assert await _rows_of(pool, kept_id) == stored
    finally:
        await pool.execute("DELETE FROM orgs WHERE id = ANY($1::bigint[])", [gone_id, kept_id])


async def test_deleting_an_evaluation_deletes_only_its_violations(pool: asyncpg.Pool) -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    org_id, _ = await create_org(pool, org)
    try:
        first, second = (_violating(org, org_id, "a", "one", "two"),
                         _violating(org, org_id, "a", "three"))
        async with pool.acquire() as conn:
            await store_batch(conn, [first])
            await store_batch(conn, [second])
        await pool.execute("DELETE FROM evaluations WHERE id = $1", first.evaluation_id)
        left = await pool.fetch("SELECT evaluation_id, urn FROM violations WHERE org_id = $1",
                                org_id)
        assert [(r["evaluation_id"], r["urn"]) for r in left] == [(second.evaluation_id,
                                                                   "three")]
    finally:
        await pool.execute("DELETE FROM orgs WHERE id = $1", org_id)
