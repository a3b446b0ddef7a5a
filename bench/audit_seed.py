"""An audit-mode stack group written straight to Postgres: S stacks with R last known
resources each (``stacks.resources``), all members, aws-baseline applied."""

from __future__ import annotations

import random
from typing import Any

import asyncpg

from bench.events import PROJECTS, resources
from bench.packs import publish_copies

INSERT_BATCH = 100


async def seed_audit_group(pool: asyncpg.Pool, org_id: int, group: str, stacks: int,
                           resource_count: int, config: dict[str, Any],
                           rng: random.Random) -> int:
    """Create the group and its stacks; return how many resources they hold in all."""
    async with pool.acquire() as conn, conn.transaction():
        [version_id] = await publish_copies(conn, org_id, 1)
        group_id = await conn.fetchval(
            """INSERT INTO policy_groups (org_id, name, entity_type, mode)
               VALUES ($1, $2, 'stacks', 'audit') RETURNING id""", org_id, group)
        await conn.execute(
            """INSERT INTO policy_group_packs (group_id, pack_id, pack_version_id, config)
               SELECT $1, pack_id, id, $3 FROM policy_pack_versions WHERE id = $2""",
            group_id, version_id, config)
        for start in range(0, stacks, INSERT_BATCH):
            await conn.executemany(
                """INSERT INTO stacks (org_id, project, name, resources, resource_count)
                   VALUES ($1, $2, $3, $4, $5)""",
                [_stack_row(org_id, i, resource_count, rng)
                 for i in range(start, min(stacks, start + INSERT_BATCH))])
        await conn.execute(
            """INSERT INTO policy_group_stacks (group_id, stack_id)
               SELECT $1, id FROM stacks WHERE org_id = $2""", group_id, org_id)
        return int(await conn.fetchval(
            "SELECT sum(resource_count) FROM stacks WHERE org_id = $1", org_id))


def _stack_row(org_id: int, index: int, resource_count: int,
               rng: random.Random) -> tuple[int, str, str, list[dict[str, Any]], int]:
    project, stack = PROJECTS[index % len(PROJECTS)], f"stack-{index}"
    return (org_id, project, stack, resources(rng, project, stack, resource_count),
            resource_count)
