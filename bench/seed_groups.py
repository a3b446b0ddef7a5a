"""A synthetic org of many stack groups: as snapshots in memory, or rows in Postgres."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

import asyncpg

from bench.packs import example_policies
from gavel.orgs import create_org

PACK_VERSIONS = 20
STACKS_PER_GROUP = 10
PROJECTS = 20


def _stack_name(i: int) -> tuple[str, str]:
    return f"project-{i % PROJECTS}", f"stack-{i}"


def _config(pack: int) -> dict[str, Any]:
    if pack % 2:
        return {}
    return {"required-tags": {"enforcementLevel": "mandatory", "requiredTags": ["owner"]}}


@dataclass
class Layout:
    stacks: int
    members: list[list[int]]  # per group: stack numbers
    packs: list[list[int]]  # per group: pack numbers (0..PACK_VERSIONS-1)

    @classmethod
    def random(cls, groups: int, stacks: int, rng: random.Random) -> Layout:
        half = max(STACKS_PER_GROUP, stacks // 2)
        return cls(stacks=stacks,
                   members=[rng.sample(range(half), STACKS_PER_GROUP) for _ in range(groups)],
                   packs=[rng.sample(range(PACK_VERSIONS), rng.randint(1, 3))
                          for _ in range(groups)])

    def explicit_stacks(self) -> list[str]:
        named = sorted({s for members in self.members for s in members})
        return ["/".join(_stack_name(s)) for s in named]

    def implicit_stacks(self) -> list[str]:
        named = {s for members in self.members for s in members}
        return ["/".join(_stack_name(s)) for s in range(self.stacks) if s not in named]

    def snapshots(self, org: str) -> list[dict[str, Any]]:
        """Group snapshots as ``gavel.group_snapshot`` produces them (ids made up)."""
        default = {"id": 1, "org": org, "name": "default-policy-group", "entityType": "stacks",
                   "mode": "preventative", "agentPoolId": "", "isOrgDefault": True,
                   "stacks": [], "accounts": [], "appliedPolicyPacks": [applied(0)]}
        return [default] + [
            {"id": g + 2, "org": org, "name": f"group-{g}", "entityType": "stacks",
             "mode": "audit" if g % 3 == 0 else "preventative", "agentPoolId": "",
             "isOrgDefault": False,
             "stacks": [dict(zip(("routingProject", "name"), _stack_name(s), strict=True))
                        for s in members],
             "accounts": [], "appliedPolicyPacks": [applied(p) for p in packs]}
            for g, (members, packs) in enumerate(zip(self.members, self.packs, strict=True))]


def applied(pack: int) -> dict[str, Any]:
    """The ``pack``-th pack version as a group snapshot applies it."""
    return {"name": f"pack-{pack}", "displayName": None, "version": 1,
            "versionTag": f"1.0.{pack}", "versionId": pack + 1, "config": _config(pack),
            "environments": []}


async def insert(url: str, layout: Layout, org: str) -> None:
    """Write the layout's org, stacks, groups, members and packs with COPY."""
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    assert pool is not None
    try:
        org_id, _ = await create_org(pool, org)
        async with pool.acquire() as conn, conn.transaction():
            await _insert_rows(conn, org_id, layout)
    finally:
        await pool.close()


async def _insert_rows(conn: asyncpg.Connection, org_id: int, layout: Layout) -> None:
    policies = json.dumps(example_policies())
    version_ids = []
    for p in range(PACK_VERSIONS):
        pack_id = await conn.fetchval(
            "INSERT INTO policy_packs (org_id, name) VALUES ($1, $2) RETURNING id",
            org_id, f"pack-{p}")
        version_ids.append((pack_id, await conn.fetchval(
            """INSERT INTO policy_pack_versions (pack_id, version, version_tag, policies)
               VALUES ($1, 1, $2, $3::jsonb) RETURNING id""", pack_id, f"1.0.{p}", policies)))
    await conn.copy_records_to_table(
        "stacks", columns=["org_id", "project", "name"],
        records=[(org_id, *_stack_name(s)) for s in range(layout.stacks)])
    stack_ids = dict(await conn.fetch(
        "SELECT name, id FROM stacks WHERE org_id = $1", org_id))
    group_ids = await conn.fetch(
        """INSERT INTO policy_groups (org_id, name, entity_type, mode)
           SELECT $1, 'group-' || g, 'stacks', 'preventative'
           FROM generate_series(0, $2 - 1) g RETURNING id, name""",
        org_id, len(layout.members))
    by_name = {r["name"]: r["id"] for r in group_ids}
    await conn.copy_records_to_table(
        "policy_group_stacks", columns=["group_id", "stack_id"],
        records=[(by_name[f"group-{g}"], stack_ids[_stack_name(s)[1]])
                 for g, members in enumerate(layout.members) for s in members])
    await conn.copy_records_to_table(
        "policy_group_packs", columns=["group_id", "pack_id", "pack_version_id", "config"],
        records=[(by_name[f"group-{g}"], *version_ids[p], json.dumps(_config(p)))
                 for g, packs in enumerate(layout.packs) for p in packs])
