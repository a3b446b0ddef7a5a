"""Audit scans: requested (by a user, a group change or the schedule), read back.

A request for a target that already has a queued audit joins it, so triggers in
quick succession become one audit; a queued audit starts ``coalesce_seconds`` after
its first request (``gavel.audit_planning`` starts it).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import asyncpg

NOTIFY_CHANNEL = "gavel_audit"
ORG_TARGET = "org"
SCHEDULE_TARGET = "schedule"
Trigger = Literal["manual", "group-change", "schedule"]


def group_target(group_id: int) -> str:
    return f"group:{group_id}"


async def request_audit(conn: asyncpg.Connection, org_id: int, *, target: str,
                        trigger: Trigger, delay: float,
                        policy_group: str | None = None) -> tuple[uuid.UUID, bool]:
    """Queue an audit of ``target`` (or join the one queued); returns (id, created)."""
    audit_id = await conn.fetchval(
        """INSERT INTO audits (id, org_id, target, policy_group, trigger, status, not_before)
           VALUES ($1, $2, $3, $4, $5, 'queued', now() + make_interval(secs => $6))
           ON CONFLICT (org_id, target) WHERE status = 'queued' DO NOTHING
           RETURNING id""",
        uuid.uuid4(), org_id, target, policy_group, trigger, delay)
    if audit_id is None:
        queued = await conn.fetchval(
            "SELECT id FROM audits WHERE org_id = $1 AND target = $2 AND status = 'queued'",
            org_id, target)
        if queued is not None:
            return queued, False
        # it started between the two statements: queue a new one after all
        return await request_audit(conn, org_id, target=target, trigger=trigger,
                                   delay=delay, policy_group=policy_group)
    await conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")
    return audit_id, True


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def audit_document(row: asyncpg.Record) -> dict[str, Any]:
    processed = row["evaluated"] + row["failed"]
    return {
        "id": str(row["id"]), "status": row["status"], "trigger": row["trigger"],
        "policyGroup": row["policy_group"],
        "scope": "group" if row["policy_group"] is not None else row["target"],
        "policyGroups": list(row["groups"]),
        "total": row["total"], "evaluated": row["evaluated"], "failed": row["failed"],
        "progress": round(processed / row["total"], 4) if row["total"] else
        (1.0 if row["status"] == "completed" else 0.0),
        "violations": {"advisory": row["advisory"], "mandatory": row["mandatory"]},
        "error": row["error"],
        "createdAt": _iso(row["created_at"]), "startedAt": _iso(row["started_at"]),
        "finishedAt": _iso(row["finished_at"]),
    }


async def get_audit(pool: asyncpg.Pool, org_id: int,
                    audit_id: uuid.UUID) -> dict[str, Any] | None:
    row = await pool.fetchrow("SELECT * FROM audits WHERE id = $1 AND org_id = $2",
                              audit_id, org_id)
    return audit_document(row) if row else None


async def list_audits(pool: asyncpg.Pool, org_id: int, *, status: str | None, offset: int,
                      limit: int) -> tuple[list[dict[str, Any]], int]:
    """One page of the org's audits, newest first, and how many there are in all."""
    where = "org_id = $1 AND ($2::text IS NULL OR status = $2)"
    total = await pool.fetchval(f"SELECT count(*) FROM audits WHERE {where}", org_id, status)
    rows = await pool.fetch(
        f"SELECT * FROM audits WHERE {where} ORDER BY created_at DESC, id LIMIT $3 OFFSET $4",
        org_id, status, limit, offset)
    return [audit_document(row) for row in rows], int(total)
