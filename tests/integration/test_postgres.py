"""The real PostgreSQL: migrations and a row round-tripped through asyncpg."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from gavel.migrations import Migration, MigrationError, migrate
from gavel.orgs import create_org
from gavel.settings import Settings
from tests.helpers import pool_migrated_before


async def test_migrations_are_recorded(pool: asyncpg.Pool) -> None:
    rows = await pool.fetch("SELECT version FROM schema_migrations ORDER BY version")
    assert next(r["version"] for r in rows) == 1
    assert await pool.fetchval("SELECT to_regclass('policy_groups')") == "policy_groups"


async def test_migrate_again_applies_nothing(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await migrate(conn) == []


async def test_runner_applies_in_order_once_and_refuses_edits(stack_env: dict[str, str]) -> None:
    base = stack_env["GAVEL_DATABASE_URL"]
    name = f"gavel_mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(base)
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(base.rsplit("/", 1)[0] + f"/{name}")
    try:
        first = Migration(1, "t", "CREATE TABLE t (v int); INSERT INTO t VALUES (1);")
        second = Migration(2, "t_more", "INSERT INTO t VALUES (2);")
        assert await migrate(conn, [second, first]) == [1, 2]
        assert await migrate(conn, [first, second]) == []
        assert await conn.fetchval("SELECT array_agg(v ORDER BY v) FROM t") == [1, 2]
        broken = Migration(3, "broken", "INSERT INTO t VALUES (3); SELECT nonsense_fn();")
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await migrate(conn, [first, second, broken])
        # a failed migration leaves nothing behind
        assert await conn.fetchval("SELECT count(*) FROM t") == 2
        assert await conn.fetchval("SELECT max(version) FROM schema_migrations") == 2
        edited = Migration(1, "t", "CREATE TABLE t (v bigint);")
        with pytest.raises(MigrationError, match="changed"):
            await migrate(conn, [edited, second])
    finally:
        await conn.close()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_jsonb_round_trip(pool: asyncpg.Pool) -> None:
    org_id = await pool.fetchval(
        "INSERT INTO orgs (name) VALUES ($1) RETURNING id", f"rt-{uuid.uuid4().hex[:6]}")
    try:
        resources = [{"urn": "urn:1", "properties": {"tags": {"team": "web"}, "size": 3}}]
        stack_id = await pool.fetchval(
            "INSERT INTO stacks (org_id, project, name, resources) VALUES ($1,'p','s',$2) "
            "RETURNING id", org_id, resources)
        stored = await pool.fetchval("SELECT resources FROM stacks WHERE id=$1", stack_id)
        assert stored == resources
    finally:
        await pool.execute("DELETE FROM orgs WHERE id=$1", org_id)


async def test_migration_gives_each_pack_version_the_display_name_of_its_pack(
        stack_env: dict[str, str], settings: Settings, session_id: str) -> None:
    async with pool_migrated_before(stack_env["GAVEL_DATABASE_URL"], settings.database,
                                    f"gavel_test_{session_id}_display", 21) as pool:
        org_id, _ = await create_org(pool, "acme")
        for name, display_name, versions in (("base", "Baseline", 2), ("tags", "", 1)):
            pack_id = await pool.fetchval(
                "INSERT INTO policy_packs (org_id, name, display_name) VALUES ($1, $2, $3) "
                "RETURNING id", org_id, name, display_name)
            for version in range(1, versions + 1):
                await pool.execute(
                    "INSERT INTO policy_pack_versions (pack_id, version, version_tag, policies) "
                    "VALUES ($1, $2, $3, '[]')", pack_id, version, f"v{version}")
        async with pool.acquire() as conn:
            await migrate(conn)
        rows = await pool.fetch(
            "SELECT p.name, v.version, v.display_name FROM policy_pack_versions v "
            "JOIN policy_packs p ON p.id = v.pack_id ORDER BY 1, 2")
        assert [tuple(r) for r in rows] == [("base", 1, "Baseline"), ("base", 2, "Baseline"),
                                            ("tags", 1, "")]
