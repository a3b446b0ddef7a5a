"""A database and Kafka topic names of the benchmark's own, removed afterwards."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

from gavel.kafka import TOPIC_FIELDS, all_topics
from gavel.migrations import migrate
from gavel.settings import Settings, load_settings

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def _require_local(settings: Settings) -> None:
    # load is only ever generated against this machine's servers
    hosts = [urlsplit(settings.database.url).hostname, urlsplit(settings.opa.url).hostname]
    hosts += [s.rsplit(":", 1)[0] for s in settings.kafka.bootstrap_servers.split(",")]
    remote = [h for h in hosts if h not in _LOCAL_HOSTS]
    if remote:
        raise SystemExit(f"benchmarks only run against 127.0.0.1; got {remote}")


def scratch_environment(base: Settings, tag: str) -> dict[str, str]:
    """``GAVEL_*`` variables naming the scratch database, topics and consumer group."""
    env = {"GAVEL_DATABASE_URL": _with_database(base.database.url, tag),
           "GAVEL_KAFKA_CONSUMER_GROUP": f"{tag}-evaluators"}
    for name in TOPIC_FIELDS:
        env[f"GAVEL_KAFKA_{name.upper()}"] = f"{tag}.{getattr(base.kafka, name)}"
    return env


@asynccontextmanager
async def scratch(with_topics: bool = False) -> AsyncIterator[tuple[Settings, dict[str, str]]]:
    """Yield settings (and their env) for a fresh migrated database and fresh topics."""
    base = load_settings()
    _require_local(base)
    tag = f"bench_{secrets.token_hex(4)}"
    env = scratch_environment(base, tag)
    admin_conn = await asyncpg.connect(base.database.url)
    try:
        await admin_conn.execute(f'CREATE DATABASE "{tag}"')
        os.environ.update(env)
        settings = load_settings()
        conn = await asyncpg.connect(settings.database.url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        try:
            yield settings, env
        finally:
            if with_topics:
                await _delete_topics(settings)
            await admin_conn.execute(f'DROP DATABASE IF EXISTS "{tag}" WITH (FORCE)')
    finally:
        await admin_conn.close()


async def _delete_topics(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [t for t in all_topics(settings.kafka) if t in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


async def analyze(pool: asyncpg.Pool) -> None:
    """Statistics for the scratch database, as autovacuum keeps them in a running
    installation. Until a table is first analyzed the planner cannot tell its indexes
    apart (it took the (org, id) index to find an entity's current violations, reading
    the whole org for each); analyzing also makes every connection plan again."""
    await pool.execute("ANALYZE")
