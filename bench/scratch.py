"""A database and Kafka topic names of the benchmark's own, removed afterwards."""

from __future__ import annotations

import os
import secrets
import time
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


# The tables autovacuum would analyze now: changed by more than its threshold since
# they were last analyzed (no table sets thresholds of its own).
_DUE_FOR_ANALYZE = """
SELECT s.relname
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.schemaname = 'public'
  AND s.n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::float
      + current_setting('autovacuum_analyze_scale_factor')::float * greatest(c.reltuples, 0)
"""
# The history only grows: autovacuum analyzes it each time a tenth of its rows is new,
# which costs the same (a sample of 30,000 rows, about a second here) at any size. A
# benchmark's young database reaches that every few thousand events; a long-running
# installation's hardly ever.
HISTORY = ("evaluations", "violations")


async def vacuum(pool: asyncpg.Pool, *, analyze: bool) -> float:
    """Vacuum the scratch database and analyze it (all of it if ``analyze``, else the
    tables autovacuum would analyze now, but for the history); the seconds it took.

    Analyzing gives the statistics autovacuum keeps in a running installation: until a
    table is first analyzed the planner cannot tell its indexes apart (it took the
    (org, id) index to find an entity's current violations, reading the whole org for
    each), and it makes every connection plan again. Vacuuming clears the dead rows a
    phase left (each evaluation replaces its entity's current state) and marks the
    pages it added visible. Done here, this work, and analyzing the tables it churned,
    does not run in the next phase: with the dev stack's 5 s autovacuum it otherwise
    landed in the phase that followed, which it slowed and whose CPU it added to."""
    began = time.perf_counter()
    await pool.execute("VACUUM")
    if analyze:
        await pool.execute("ANALYZE")
    else:
        await _analyze(pool, [t for t in await _due_for_analyze(pool) if t not in HISTORY])
    return time.perf_counter() - began


async def analyze_history(pool: asyncpg.Pool) -> float:
    """Analyze the history tables autovacuum would analyze now; the seconds it took."""
    began = time.perf_counter()
    await _analyze(pool, [t for t in await _due_for_analyze(pool) if t in HISTORY])
    return time.perf_counter() - began


async def _due_for_analyze(pool: asyncpg.Pool) -> list[str]:
    return [row[0] for row in await pool.fetch(_DUE_FOR_ANALYZE)]


async def _analyze(pool: asyncpg.Pool, tables: list[str]) -> None:
    if tables:
        await pool.execute("ANALYZE " + ", ".join(f'public."{t}"' for t in tables))
