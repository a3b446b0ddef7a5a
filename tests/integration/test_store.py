"""The worker's store keeps each stack's last known resources: a deployment replaces
them, a destroy empties them and a preview leaves them, however a batch orders the
events of one stack."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from gavel.events import StackEvent, envelope
from gavel.orgs import create_org
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
