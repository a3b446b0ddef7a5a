"""The example aws-baseline pack, published under several names and applied to the
default stack group, straight in Postgres (the worker reads it at start-up)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg

from gavel.orgs import create_org

EXAMPLE_PACK = Path(__file__).resolve().parent.parent / "examples" / "aws-baseline.json"
ORG = "bench"


def example_policies() -> list[dict[str, Any]]:
    return json.loads(EXAMPLE_PACK.read_text())["policies"]


async def publish_copies(conn: asyncpg.Connection, org_id: int, copies: int) -> list[int]:
    """Publish the example pack ``copies`` times under different names; version ids."""
    policies = example_policies()
    version_ids = []
    for n in range(copies):
        pack_id = await conn.fetchval(
            "INSERT INTO policy_packs (org_id, name) VALUES ($1, $2) RETURNING id",
            org_id, f"aws-baseline-{n + 1}")
        version_ids.append(await conn.fetchval(
            """INSERT INTO policy_pack_versions (pack_id, version, version_tag, policies)
               VALUES ($1, 1, $2, $3) RETURNING id""", pack_id, f"1.0.{n}", policies))
    return version_ids


async def apply_to_default_group(conn: asyncpg.Connection, org_id: int,
                                 version_ids: list[int], config: dict[str, Any]) -> None:
    group_id = await conn.fetchval(
        "SELECT id FROM policy_groups WHERE org_id = $1 AND is_org_default "
        "AND entity_type = 'stacks'", org_id)
    await conn.executemany(
        """INSERT INTO policy_group_packs (group_id, pack_id, pack_version_id, config)
           SELECT $1, pack_id, id, $3 FROM policy_pack_versions WHERE id = $2""",
        [(group_id, v, config) for v in version_ids])


async def set_up_org(pool: asyncpg.Pool, copies: int, config: dict[str, Any]) -> list[int]:
    """Create the bench org with ``copies`` packs on its default stack group."""
    org_id, _ = await create_org(pool, ORG)
    async with pool.acquire() as conn, conn.transaction():
        version_ids = await publish_copies(conn, org_id, copies)
        await apply_to_default_group(conn, org_id, version_ids, config)
    return version_ids
