"""Policy groups: listing, reading, creating and deleting (updates: ``group_updates``).

Every change records a group-change event in the same transaction, after the change
(``gavel.group_snapshot.record_group_change``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from gavel.domain_errors import ConflictError, InvalidError, NotFoundError
from gavel.entity_names import name_problem
from gavel.group_snapshot import applied_packs as snapshot_packs
from gavel.group_snapshot import record_group_change
from gavel.membership import WITH_MEMBERS
from gavel.policy_group_models import NewPolicyGroup


@dataclass(frozen=True)
class GroupRow:
    id: int
    name: str
    entity_type: str
    mode: str
    is_org_default: bool


def group_not_found(name: str) -> NotFoundError:
    return NotFoundError(f"Policy Group '{name[:100]}' not found")


def _require_possible_name(name: str) -> None:
    # A name no group could have (e.g. with a NUL) is simply not found.
    if name_problem(name):
        raise group_not_found(name)


async def find_group(conn: asyncpg.Connection | asyncpg.Pool, org_id: int, name: str,
                     *, for_update: bool = False) -> GroupRow:
    _require_possible_name(name)
    row = await conn.fetchrow(
        "SELECT id, name, entity_type, mode, is_org_default FROM policy_groups "
        "WHERE org_id = $1 AND name = $2" + (" FOR UPDATE" if for_update else ""),
        org_id, name)
    if row is None:
        raise group_not_found(name)
    return GroupRow(**dict(row))


_SUMMARIES = WITH_MEMBERS + """
SELECT g.name, g.is_org_default, g.entity_type, g.mode,
       (SELECT count(*) FROM stack_members sm WHERE sm.group_id = g.id) AS num_stacks,
       (SELECT count(*) FROM account_members am WHERE am.group_id = g.id) AS num_accounts,
       (SELECT count(*) FROM policy_group_packs gp WHERE gp.group_id = g.id) AS num_packs
FROM policy_groups g WHERE g.org_id = $1
ORDER BY g.name
"""


async def list_summaries(conn: asyncpg.Pool | asyncpg.Connection,
                         org_id: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(_SUMMARIES, org_id)
    return [{"name": r["name"], "isOrgDefault": r["is_org_default"],
             "numStacks": r["num_stacks"], "numAccounts": r["num_accounts"],
             "entityType": r["entity_type"], "mode": r["mode"],
             "numEnabledPolicyPacks": r["num_packs"]} for r in rows]


async def applied_packs(conn: asyncpg.Pool | asyncpg.Connection,
                        group_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Applied packs per group, in the AppPolicyPackMetadata shape."""
    return {group_id: [{k: v for k, v in pack.items() if k != "versionId"} for pack in packs]
            for group_id, packs in (await snapshot_packs(conn, group_ids)).items()}


_GROUP_STACKS = WITH_MEMBERS + """
SELECT s.project, s.name FROM stack_members sm JOIN stacks s ON s.id = sm.stack_id
WHERE sm.group_id = $2 ORDER BY s.project, s.name
"""
_GROUP_ACCOUNTS = WITH_MEMBERS + """
SELECT a.name FROM account_members am JOIN accounts a ON a.id = am.account_id
WHERE am.group_id = $2 ORDER BY a.name
"""


async def get_group(conn: asyncpg.Pool | asyncpg.Connection, org_id: int,
                    name: str) -> dict[str, Any]:
    """The PolicyGroup document; default groups list their implicit members too."""
    _require_possible_name(name)
    row = await conn.fetchrow(
        "SELECT id, name, entity_type, mode, is_org_default, agent_pool_id "
        "FROM policy_groups WHERE org_id = $1 AND name = $2", org_id, name)
    if row is None:
        raise group_not_found(name)
    stacks = await conn.fetch(_GROUP_STACKS, org_id, row["id"])
    accounts = await conn.fetch(_GROUP_ACCOUNTS, org_id, row["id"])
    packs = await applied_packs(conn, [row["id"]])
    return {"name": row["name"], "isOrgDefault": row["is_org_default"],
            "entityType": row["entity_type"], "mode": row["mode"],
            "stacks": [{"name": s["name"], "routingProject": s["project"]} for s in stacks],
            "accounts": [a["name"] for a in accounts],
            "appliedPolicyPacks": packs[row["id"]],
            "agentPoolId": row["agent_pool_id"] or ""}


async def create_group(pool: asyncpg.Pool, org_id: int, group: NewPolicyGroup,
                       topic: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        group_id = await conn.fetchval(
            """INSERT INTO policy_groups (org_id, name, entity_type, mode, agent_pool_id)
               VALUES ($1, $2, $3, $4, NULLIF($5, ''))
               ON CONFLICT (org_id, name) DO NOTHING RETURNING id""",
            org_id, group.name, group.entityType, group.effective_mode(), group.agentPoolId)
        if group_id is None:
            raise ConflictError(f"Policy Group '{group.name}' already exists")
        await record_group_change(conn, org_id, group_id, "created", topic)


async def delete_group(pool: asyncpg.Pool, org_id: int, name: str, topic: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        group = await find_group(conn, org_id, name, for_update=True)
        if group.is_org_default:
            raise InvalidError("Cannot delete the default Policy Group")
        await conn.execute("DELETE FROM policy_groups WHERE id = $1", group.id)
        await record_group_change(conn, org_id, group.id, "deleted", topic)
