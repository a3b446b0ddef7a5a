"""Policy group snapshots: what ``gavel.group-changes`` carries and what workers index.

A snapshot lists the group's explicit members and its applied packs (with the pack
version's database id and the normalized config). Implicit members of a default
group are not listed: whoever resolves membership knows them as "in no other group
of this entity type". A change whose snapshot would exceed SNAPSHOT_LIMIT as JSON (a
group naming some ten thousand stacks) is announced with ``"reload": true`` and no
snapshot, and its readers load the group from Postgres (``load_group``): Kafka refuses
messages over 1 MiB unless its topics allow more.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from gavel.events import GroupChangeKind, envelope
from gavel.outbox import enqueue

SNAPSHOT_LIMIT = 512 * 1024

_GROUPS = """
SELECT g.id, g.name, g.entity_type, g.mode, g.agent_pool_id, g.is_org_default, o.name AS org
FROM policy_groups g JOIN orgs o ON o.id = g.org_id
WHERE {where}
ORDER BY g.id
"""
_STACKS = """
SELECT m.group_id, s.project, s.name FROM policy_group_stacks m
JOIN stacks s ON s.id = m.stack_id WHERE m.group_id = ANY($1::bigint[])
ORDER BY s.project, s.name
"""
_ACCOUNTS = """
SELECT m.group_id, a.name FROM policy_group_accounts m
JOIN accounts a ON a.id = m.account_id WHERE m.group_id = ANY($1::bigint[])
ORDER BY a.name
"""
_PACKS = """
SELECT gp.group_id, p.name, v.display_name, v.id AS version_id, v.version, v.version_tag,
       gp.config, gp.environments
FROM policy_group_packs gp
JOIN policy_packs p ON p.id = gp.pack_id
JOIN policy_pack_versions v ON v.id = gp.pack_version_id
WHERE gp.group_id = ANY($1::bigint[])
ORDER BY p.name
"""


async def load_snapshots(conn: asyncpg.Connection | asyncpg.Pool, where: str,
                         *args: Any) -> list[dict[str, Any]]:
    """Snapshots of the groups matching ``where`` (SQL over alias ``g``)."""
    groups = await conn.fetch(_GROUPS.format(where=where), *args)
    if not groups:
        return []
    ids = [g["id"] for g in groups]
    snapshots: dict[int, dict[str, Any]] = {
        g["id"]: {"id": g["id"], "org": g["org"], "name": g["name"],
                  "entityType": g["entity_type"], "mode": g["mode"],
                  "agentPoolId": g["agent_pool_id"] or "", "isOrgDefault": g["is_org_default"],
                  "stacks": [], "accounts": [], "appliedPolicyPacks": []}
        for g in groups}
    for row in await conn.fetch(_STACKS, ids):
        snapshots[row["group_id"]]["stacks"].append(
            {"routingProject": row["project"], "name": row["name"]})
    for row in await conn.fetch(_ACCOUNTS, ids):
        snapshots[row["group_id"]]["accounts"].append(row["name"])
    for group_id, packs in (await applied_packs(conn, ids)).items():
        snapshots[group_id]["appliedPolicyPacks"] = packs
    return list(snapshots.values())


async def applied_packs(conn: asyncpg.Connection | asyncpg.Pool,
                        group_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Applied packs per group (AppPolicyPackMetadata fields plus the ``versionId``)."""
    packs: dict[int, list[dict[str, Any]]] = {group_id: [] for group_id in group_ids}
    for row in await conn.fetch(_PACKS, group_ids):
        packs[row["group_id"]].append(
            {"name": row["name"], "displayName": row["display_name"],
             "version": row["version"], "versionTag": row["version_tag"],
             "versionId": row["version_id"], "config": row["config"],
             "environments": row["environments"]})
    return packs


async def record_group_change(conn: asyncpg.Connection, org_id: int, group_id: int,
                              change: GroupChangeKind, topic: str) -> int:
    """Bump the org's revision and enqueue the group's snapshot (or its deletion).

    Call inside the transaction that made the change, after the change; the row lock
    on the org serializes concurrent changes so revisions follow commit order.
    """
    row = await conn.fetchrow(
        "UPDATE orgs SET revision = revision + 1 WHERE id = $1 RETURNING name, revision", org_id)
    org, revision = row["name"], row["revision"]
    group = None if change == "deleted" else await load_group(conn, group_id)
    reload = group is not None and len(orjson.dumps(group)) > SNAPSHOT_LIMIT
    await enqueue(conn, topic, org, envelope(org, change=change, revision=revision,
                                             groupId=group_id,
                                             group=None if reload else group,
                                             deleted=change == "deleted",
                                             **({"reload": True} if reload else {})))
    return int(revision)


async def load_group(conn: asyncpg.Connection | asyncpg.Pool,
                     group_id: int) -> dict[str, Any] | None:
    """The group's snapshot; None if there is no such group (deleted)."""
    snapshots = await load_snapshots(conn, "g.id = $1", group_id)
    return snapshots[0] if snapshots else None
