"""Evaluations: accepted as pending (with their outbox event), read back as documents."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from gavel.events import envelope
from gavel.outbox import enqueue


async def accept_event(conn: asyncpg.Connection, *, org_id: int, org: str, topic: str,
                       key: str, entity_type: str, entity_key: str, kind: str,
                       event_id: str | None, fields: dict[str, Any],
                       scan: tuple[str, int, int] | None = None) -> tuple[uuid.UUID, str, bool]:
    """Record a pending evaluation and enqueue its event, in the caller's transaction.

    Returns (evaluation id, status, created). The same ``event_id`` again returns the
    first evaluation and enqueues nothing.
    """
    value = envelope(org, **fields)
    if event_id:
        value["eventId"] = event_id
    evaluation_id = uuid.uuid4()
    value["evaluationId"] = str(evaluation_id)
    value["groupRevision"] = await conn.fetchval("SELECT revision FROM orgs WHERE id = $1",
                                                 org_id)
    inserted = await conn.fetchval(
        """INSERT INTO evaluations (id, org_id, event_id, entity_type, entity_key, kind, status,
                                    resource_count, scan_id, chunk, chunks, occurred_at)
           VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, $10, $11)
           ON CONFLICT (org_id, event_id) DO NOTHING RETURNING id""",
        evaluation_id, org_id, value["eventId"], entity_type, entity_key, kind,
        len(fields.get("resources", [])), *(scan or (None, None, None)),
        datetime.fromisoformat(value["occurredAt"]))
    if inserted is None:
        row = await conn.fetchrow(
            "SELECT id, status FROM evaluations WHERE org_id = $1 AND event_id = $2",
            org_id, value["eventId"])
        return row["id"], row["status"], False
    await enqueue(conn, topic, key, value)
    return evaluation_id, "pending", True


def entity_view(row: asyncpg.Record, org: str) -> dict[str, Any]:
    if row["entity_type"] == "stack":
        project, _, stack = row["entity_key"].partition("/")
        return {"type": "stack", "org": org, "project": project, "stack": stack}
    return {"type": "account", "org": org, "account": row["entity_key"]}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def load_evaluation(pool: asyncpg.Pool, org_id: int, org: str,
                          evaluation_id: uuid.UUID) -> dict[str, Any] | None:
    row = await pool.fetchrow("SELECT * FROM evaluations WHERE id = $1 AND org_id = $2",
                              evaluation_id, org_id)
    if row is None:
        return None
    violations = await pool.fetch(
        """SELECT groups, pack, pack_version, version_tag, policy, level, urn, message, details
           FROM violations WHERE evaluation_id = $1 ORDER BY id""", evaluation_id)
    document: dict[str, Any] = {
        "id": str(row["id"]), "eventId": row["event_id"], "entity": entity_view(row, org),
        "kind": row["kind"], "status": row["status"], "outcome": row["outcome"],
        "blocking": row["blocking"], "resourceCount": row["resource_count"],
        "receivedAt": _iso(row["received_at"]), "occurredAt": _iso(row["occurred_at"]),
        "finishedAt": _iso(row["finished_at"]), "opaVersion": row["opa_version"],
        "packs": row["packs"],
        "violations": [
            {"groups": v["groups"], "pack": v["pack"], "packVersion": v["pack_version"],
             "versionTag": v["version_tag"], "policy": v["policy"], "level": v["level"],
             "urn": v["urn"], "message": v["message"], "details": v["details"]}
            for v in violations],
    }
    if row["scan_id"] is not None:
        document.update(scanId=row["scan_id"], chunk=row["chunk"], chunks=row["chunks"])
    if row["audit_id"] is not None:
        document["auditId"] = str(row["audit_id"])
    return document


async def latest_evaluation(pool: asyncpg.Pool, org_id: int, org: str, entity_type: str,
                            entity_key: str) -> dict[str, Any] | None:
    """The entity's most recently finished evaluation, as a document."""
    evaluation_id = await pool.fetchval(
        """SELECT id FROM evaluations WHERE org_id = $1 AND entity_type = $2
           AND entity_key = $3 AND status = 'finished' ORDER BY finished_at DESC LIMIT 1""",
        org_id, entity_type, entity_key)
    if evaluation_id is None:
        return None
    return await load_evaluation(pool, org_id, org, evaluation_id)
