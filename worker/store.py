"""Write a finished evaluation: idempotent on the evaluation id, one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from gavel.events import AccountEvent, StackEvent
from worker.evaluate import PackResult

NOTIFY_CHANNEL = "gavel_evaluation"

_FINISH_PENDING = """
UPDATE evaluations SET status = 'finished', outcome = $2, blocking = $3, packs = $4,
       opa_version = $5, finished_at = now(), resource_count = $6
WHERE id = $1 AND status = 'pending'
RETURNING finished_at
"""
_INSERT_FINISHED = """
INSERT INTO evaluations (id, org_id, event_id, entity_type, entity_key, kind, status, outcome,
                         blocking, packs, opa_version, finished_at, resource_count, scan_id,
                         chunk, chunks, audit_id, occurred_at)
VALUES ($1, $2, $3, $4, $5, $6, 'finished', $7, $8, $9, $10, now(), $11, $12, $13, $14, $15, $16)
ON CONFLICT DO NOTHING
RETURNING finished_at
"""
_INSERT_VIOLATION = """
INSERT INTO violations (evaluation_id, org_id, entity_type, entity_key, groups, pack,
                        pack_version, version_tag, policy, level, urn, message, details,
                        observed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
"""


@dataclass(slots=True)
class Finished:
    event: StackEvent | AccountEvent
    org_id: int
    entity_type: str
    entity_key: str
    outcome: str
    blocking: bool
    packs: list[PackResult]
    opa_version: str


async def store(conn: asyncpg.Connection, done: Finished) -> datetime | None:
    """Store the evaluation; None when it was already stored (a redelivery)."""
    event = done.event
    provenance = [p.provenance(done.opa_version) for p in done.packs]
    async with conn.transaction():
        finished_at = await conn.fetchval(
            _FINISH_PENDING, event.evaluationId, done.outcome, done.blocking, provenance,
            done.opa_version, len(event.resources))
        if finished_at is None:
            scan = event if isinstance(event, AccountEvent) else None
            finished_at = await conn.fetchval(
                _INSERT_FINISHED, event.evaluationId, done.org_id, event.eventId,
                done.entity_type, done.entity_key, event.kind, done.outcome, done.blocking,
                provenance, done.opa_version, len(event.resources),
                scan.scanId if scan else None, scan.chunk if scan else None,
                scan.chunks if scan else None, scan.auditId if scan else None,
                event.occurredAt)
        if finished_at is None:
            return None
        rows = [(event.evaluationId, done.org_id, done.entity_type, done.entity_key, v.groups,
                 v.pack, v.pack_version, v.version_tag, v.policy, v.level, v.urn, v.message,
                 v.details, finished_at)
                for pack in done.packs for v in pack.violations]
        if rows:
            await conn.executemany(_INSERT_VIOLATION, rows)
        await _remember_resources(conn, done)
        await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, str(event.evaluationId))
    return finished_at


async def _remember_resources(conn: asyncpg.Connection, done: Finished) -> None:
    """Keep each entity's last known resources, for audits."""
    event = done.event
    resources: list[dict[str, Any]] = [r.model_dump() for r in event.resources]
    if isinstance(event, StackEvent):
        if event.kind == "preview":
            resources_sql = "stacks.resources"
        elif event.kind == "destroy":
            resources, resources_sql = [], "EXCLUDED.resources"
        else:
            resources_sql = "EXCLUDED.resources"
        await conn.execute(
            f"""INSERT INTO stacks (org_id, project, name, resources, resource_count)
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (org_id, project, name) DO UPDATE
                SET resources = {resources_sql},
                    resource_count = jsonb_array_length({resources_sql}), updated_at = now()""",
            done.org_id, event.project, event.stack,
            resources if event.kind != "preview" else [], len(resources)
            if event.kind != "preview" else 0)
        return
    if event.auditId is not None:
        return
    # the first chunk of a scan replaces what the account had; later chunks add to it
    await conn.execute(
        """UPDATE accounts SET
               resources = CASE WHEN $3 = 1 THEN $4::jsonb ELSE resources || $4::jsonb END,
               resource_count = CASE WHEN $3 = 1 THEN $5 ELSE resource_count + $5 END,
               scan_status = jsonb_build_object('scanId', $6::text, 'chunk', $3::int,
                                                'chunks', $7::int, 'finishedAt', now()),
               updated_at = now()
           WHERE org_id = $1 AND name = $2""",
        done.org_id, event.account, event.chunk, resources, len(resources), event.scanId,
        event.chunks)
