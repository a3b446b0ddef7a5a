"""Stacks: registration with their last known resources, and the groups that apply."""

from __future__ import annotations

from typing import Any

import asyncpg

from gavel.domain_errors import NotFoundError
from gavel.membership import STACK_MEMBERS
from gavel.policy_groups import applied_packs

_REGISTER = """
INSERT INTO stacks (org_id, project, name, resources, resource_count)
VALUES ($1, $2, $3, coalesce($4::json, '[]'::json), coalesce($5::integer, 0))
ON CONFLICT (org_id, project, name) DO UPDATE
SET resources = coalesce($4::json, stacks.resources),
    resource_count = coalesce($5::integer, stacks.resource_count),
    updated_at = CASE WHEN $4::json IS NULL THEN stacks.updated_at ELSE now() END
RETURNING id, (xmax = 0) AS created
"""


async def register_stack(conn: asyncpg.Pool | asyncpg.Connection, org_id: int, project: str,
                         name: str, resources: list[dict[str, Any]] | None) -> bool:
    """Register the stack (idempotent); ``resources`` replaces the last known ones.

    Returns True when the stack is new.
    """
    count = None if resources is None else len(resources)
    row = await conn.fetchrow(_REGISTER, org_id, project, name, resources, count)
    return bool(row["created"])


def stack_view(row: asyncpg.Record) -> dict[str, Any]:
    return {"routingProject": row["project"], "name": row["name"],
            "resourceCount": row["resource_count"],
            "createdAt": row["created_at"].isoformat(),
            "updatedAt": row["updated_at"].isoformat()}


async def find_stack(conn: asyncpg.Pool | asyncpg.Connection, org_id: int, project: str,
                     name: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT id, project, name, resources, resource_count, created_at, updated_at "
        "FROM stacks WHERE org_id = $1 AND project = $2 AND name = $3", org_id, project, name)
    if row is None:
        raise NotFoundError(f"Stack '{project}/{name}' not found")
    return row


async def list_stacks(conn: asyncpg.Pool | asyncpg.Connection, org_id: int, offset: int,
                      limit: int) -> tuple[list[dict[str, Any]], int]:
    """One page of the org's stacks (by project, then name) and the total count."""
    rows = await conn.fetch(
        "SELECT project, name, resource_count, created_at, updated_at, "
        "count(*) OVER () AS total FROM stacks WHERE org_id = $1 "
        "ORDER BY project, name OFFSET $2 LIMIT $3", org_id, offset, limit)
    total = rows[0]["total"] if rows else await conn.fetchval(
        "SELECT count(*) FROM stacks WHERE org_id = $1", org_id)
    return [stack_view(r) for r in rows], int(total)


_STACK_GROUPS = "WITH " + STACK_MEMBERS + """
SELECT g.id, g.name, g.is_org_default, g.entity_type, g.mode, g.agent_pool_id,
       EXISTS (SELECT 1 FROM policy_group_stacks m
               WHERE m.group_id = g.id AND m.stack_id = $2) AS explicit
FROM stack_members sm JOIN policy_groups g ON g.id = sm.group_id
WHERE sm.stack_id = $2
ORDER BY g.name
"""


async def stack_groups(conn: asyncpg.Pool | asyncpg.Connection, org_id: int,
                       stack_id: int) -> list[dict[str, Any]]:
    """The groups that apply to the stack (the default group when no other does)."""
    rows = await conn.fetch(_STACK_GROUPS, org_id, stack_id)
    packs = await applied_packs(conn, [r["id"] for r in rows])
    return [{"name": r["name"], "isOrgDefault": r["is_org_default"],
             "entityType": r["entity_type"], "mode": r["mode"],
             "agentPoolId": r["agent_pool_id"] or "",
             "implicit": not r["explicit"], "appliedPolicyPacks": packs[r["id"]]}
            for r in rows]
