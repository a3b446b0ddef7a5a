"""Session fixtures: the real dev stack (started once), a fresh database and fresh
topic names per session, and factories that clean up what they built."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from gavel.db import create_pool
from gavel.kafka import TOPIC_FIELDS
from gavel.orgs import create_org
from gavel.settings import Settings, load_settings
from tests.helpers import migrated_database

ROOT = Path(__file__).resolve().parent.parent
DEVSTACK = ROOT / "deploy" / "local" / "devstack.py"
STACK_NAME = os.environ.get("GAVEL_TEST_STACK", "test")


def _devstack(*args: str) -> str:
    result = subprocess.run([sys.executable, str(DEVSTACK), *args, "--name", STACK_NAME],
                            capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"dev stack failed:\n{result.stderr}")
    return result.stdout


@pytest.fixture(scope="session")
def stack_env() -> Iterator[dict[str, str]]:
    """The dev stack's servers (or external ones named by GAVEL_* variables)."""
    env = json.loads(_devstack("start", "--json"))
    yield env
    if os.environ.get("GAVEL_KEEP_STACK") != "1":
        _devstack("stop")


@pytest.fixture(scope="session")
def session_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest_asyncio.fixture(scope="session")
async def database_url(stack_env: dict[str, str], session_id: str) -> AsyncIterator[str]:
    """A fresh database for this session, migrated, dropped at the end."""
    async with migrated_database(stack_env["GAVEL_DATABASE_URL"],
                                 f"gavel_test_{session_id}") as url:
        yield url


@pytest.fixture(scope="session")
def settings(stack_env: dict[str, str], database_url: str, session_id: str) -> Settings:
    topics = {field: f"test-{session_id}.{field.removeprefix('topic_').replace('_', '-')}"
              for field in TOPIC_FIELDS}
    return load_settings(
        database={"url": database_url},
        kafka={"bootstrap_servers": stack_env["GAVEL_KAFKA_BOOTSTRAP_SERVERS"],
               "consumer_group": f"test-{session_id}", **topics},
        opa={"url": stack_env["GAVEL_OPA_URL"],
             "check_url": stack_env.get("GAVEL_OPA_CHECK_URL", "")},
        # scheduled scans are started by hand in their test; a short coalescing window
        audit={"interval": 0, "coalesce_seconds": 0.5},
    )


@pytest_asyncio.fixture(scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.database)
    yield pool
    await pool.close()


@pytest_asyncio.fixture
async def new_org(pool: asyncpg.Pool):  # type: ignore[no-untyped-def]
    """Factory: ``await new_org()`` -> (name, admin token); orgs are deleted afterwards."""
    made: list[int] = []

    async def make(name: str | None = None) -> tuple[str, str]:
        name = name or f"org-{uuid.uuid4().hex[:8]}"
        org_id, token = await create_org(pool, name)
        made.append(org_id)
        return name, token

    yield make
    for attempt in range(5):
        try:
            await pool.execute("DELETE FROM orgs WHERE id = ANY($1::bigint[])", made)
            return
        except asyncpg.DeadlockDetectedError:
            # the worker may still be storing an evaluation of the org
            await asyncio.sleep(0.2 * (attempt + 1))
