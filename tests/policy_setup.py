"""Test set-up of packs and groups straight in Postgres, announced like the API does
(the group-change event goes through the outbox and the real relay and Kafka)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from gavel.group_snapshot import record_group_change
from gavel.settings import Settings

PUBLIC_BUCKET = """package test.public
violations contains {"message": sprintf("bucket %s is public", [r.name]), "urn": r.urn} if {
    some r in input.resources
    r.type == "aws:s3/bucket:Bucket"
    r.properties.acl == "public-read"
}
"""
REQUIRED_TAGS = """package test.tags
required := object.get(input.config, "requiredTags", ["owner"])
violations contains {"message": sprintf("%s lacks tag %s", [r.name, t]), "urn": r.urn} if {
    some r in input.resources
    some t in required
    not r.properties.tags[t]
}
"""
BASELINE = [
    {"name": "no-public-buckets", "description": "", "enforcementLevel": "mandatory",
     "rego": PUBLIC_BUCKET},
    {"name": "required-tags", "description": "", "enforcementLevel": "advisory",
     "configSchema": {"type": "object",
                      "properties": {"requiredTags": {"type": "array",
                                                      "items": {"type": "string"}}}},
     "rego": REQUIRED_TAGS},
]


async def org_id(pool: asyncpg.Pool, org: str) -> int:
    return int(await pool.fetchval("SELECT id FROM orgs WHERE name = $1", org))


async def publish(pool: asyncpg.Pool, org: str, name: str = "baseline",
                  policies: list[dict[str, Any]] | None = None) -> int:
    """Insert a pack version; returns its id."""
    oid = await org_id(pool, org)
    async with pool.acquire() as conn, conn.transaction():
        pack_id = await conn.fetchval(
            """INSERT INTO policy_packs (org_id, name) VALUES ($1, $2)
               ON CONFLICT (org_id, name) DO UPDATE SET name = EXCLUDED.name RETURNING id""",
            oid, name)
        version = await conn.fetchval(
            "UPDATE policy_packs SET next_version = next_version + 1 WHERE id = $1 "
            "RETURNING next_version - 1", pack_id)
        return int(await conn.fetchval(
            """INSERT INTO policy_pack_versions (pack_id, version, version_tag, policies)
               VALUES ($1, $2, $3, $4) RETURNING id""",
            pack_id, version, f"0.0.{version}-{uuid.uuid4().hex[:4]}",
            policies or BASELINE))


async def make_group(pool: asyncpg.Pool, settings: Settings, org: str, name: str, *,
                     mode: str = "preventative", stacks: list[tuple[str, str]] = (),
                     packs: list[tuple[int, dict[str, Any]]] = (),
                     entity_type: str = "stacks") -> int:
    """Create (or replace the members and packs of) a group and announce the change."""
    oid = await org_id(pool, org)
    async with pool.acquire() as conn, conn.transaction():
        group_id = await conn.fetchval(
            """INSERT INTO policy_groups (org_id, name, entity_type, mode) VALUES ($1,$2,$3,$4)
               ON CONFLICT (org_id, name) DO UPDATE SET mode = EXCLUDED.mode RETURNING id""",
            oid, name, entity_type, mode)
        await set_members_and_packs(conn, oid, group_id, stacks, packs)
        await record_group_change(conn, oid, group_id, "updated",
                                  settings.kafka.topic_group_changes)
    return int(group_id)


async def set_members_and_packs(conn: asyncpg.Connection, oid: int, group_id: int,
                                stacks: list[tuple[str, str]],
                                packs: list[tuple[int, dict[str, Any]]]) -> None:
    await conn.execute("DELETE FROM policy_group_stacks WHERE group_id = $1", group_id)
    await conn.execute("DELETE FROM policy_group_packs WHERE group_id = $1", group_id)
    for project, stack in stacks:
        stack_id = await conn.fetchval(
            """INSERT INTO stacks (org_id, project, name) VALUES ($1,$2,$3)
               ON CONFLICT (org_id, project, name) DO UPDATE SET name = EXCLUDED.name
               RETURNING id""", oid, project, stack)
        await conn.execute("INSERT INTO policy_group_stacks VALUES ($1, $2)", group_id,
                           stack_id)
    for version_id, config in packs:
        pack_id = await conn.fetchval(
            "SELECT pack_id FROM policy_pack_versions WHERE id = $1", version_id)
        await conn.execute(
            """INSERT INTO policy_group_packs (group_id, pack_id, pack_version_id, config)
               VALUES ($1, $2, $3, $4)""", group_id, pack_id, version_id, config)


async def set_default_group_packs(pool: asyncpg.Pool, settings: Settings, org: str,
                                  packs: list[tuple[int, dict[str, Any]]]) -> None:
    oid = await org_id(pool, org)
    async with pool.acquire() as conn, conn.transaction():
        group_id = await conn.fetchval(
            "SELECT id FROM policy_groups WHERE org_id = $1 AND is_org_default "
            "AND entity_type = 'stacks'", oid)
        await set_members_and_packs(conn, oid, group_id, [], packs)
        await record_group_change(conn, oid, group_id, "updated",
                                  settings.kafka.topic_group_changes)
