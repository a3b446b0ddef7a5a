"""Test data written straight to Postgres, for tests that need it without the API."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

REGO = """package test.policy

violations contains {"message": "never"} if { false }
"""


def policy(name: str, *, level: str = "advisory",
           config_schema: dict[str, Any] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"name": name, "description": f"{name} policy",
                             "enforcementLevel": level, "rego": REGO}
    if config_schema is not None:
        found["configSchema"] = config_schema
    return found


async def insert_pack_version(pool: asyncpg.Pool, org: str, pack: str,
                              policies: list[dict[str, Any]], *,
                              version_tag: str | None = None,
                              display_name: str = "") -> tuple[int, str]:
    """Publish the next version of ``pack`` in ``org``; return (version, versionTag)."""
    version_tag = version_tag or f"tag-{uuid.uuid4().hex[:8]}"
    async with pool.acquire() as conn, conn.transaction():
        pack_id, version = await conn.fetchrow(
            """INSERT INTO policy_packs (org_id, name, next_version)
               SELECT id, $2, 2 FROM orgs WHERE name = $1
               ON CONFLICT (org_id, name) DO UPDATE
               SET next_version = policy_packs.next_version + 1
               RETURNING id, next_version - 1""",
            org, pack)
        await conn.execute(
            """INSERT INTO policy_pack_versions (pack_id, version, version_tag,
                                                 display_name, policies)
               VALUES ($1, $2, $3, $4, $5)""",
            pack_id, version, version_tag, display_name, policies)
    return int(version), version_tag
