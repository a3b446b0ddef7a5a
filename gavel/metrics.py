"""Prometheus metrics of the API and the worker, in one process-wide registry.

In the all-in-one mode the API's ``/metrics`` therefore shows the worker's metrics
too; a worker started alone serves the same registry on its own port. Gauges read
from Postgres at scrape time live in a second registry that only the API renders,
so that a worker alone never reports a backlog of 0 it did not measure.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase

from gavel.outbox import backlog

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

EVENTS_CONSUMED = Counter(
    "gavel_events_consumed", "Messages the worker took from Kafka to evaluate", ["topic"])
EVALUATIONS = Counter(
    "gavel_evaluations", "Evaluations stored, by outcome, entity type and kind (preview, "
    "update, refresh, destroy, scan, audit)", ["outcome", "entity_type", "kind"])
# from the event's occurredAt to its result in Postgres: CI gates wait seconds,
# audits and backlogs minutes
EVALUATION_LATENCY = Histogram(
    "gavel_evaluation_latency_seconds", "Event time to evaluation stored", ["entity_type"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600))
# one OPA query per pack; OPA's own HTTP overhead is a few hundred microseconds
PACK_DURATION = Histogram(
    "gavel_opa_pack_duration_seconds", "OPA query time of one policy pack", ["pack"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
# loads far above the number of pack versions in use mean GAVEL_OPA_MAX_PACK_VERSIONS
# is below the working set: every miss recompiles all modules OPA holds
PACK_LOADS = Counter(
    "gavel_opa_pack_loads", "Pack versions the worker loaded into OPA (again, after OPA "
    "lost them or after they were removed)")
PACK_UNLOADS = Counter(
    "gavel_opa_pack_unloads", "Least recently used pack versions the worker removed from "
    "OPA to keep at most GAVEL_OPA_MAX_PACK_VERSIONS")
DEAD_LETTERS = Counter(
    "gavel_dead_letters", "Messages sent to the dead-letter topic, by original topic",
    ["topic"])
UNPUBLISHED = Counter(
    "gavel_unpublished_messages", "Finished evaluations the worker sent to Kafka without "
    "waiting that Kafka did not take (the results are in Postgres), by topic", ["topic"])
AUDITS_FINISHED = Counter(
    "gavel_audits_finished", "Audit scans that ended: completed by the worker that counted "
    "their last chunk (or by the planner, with nothing to audit), or failed by the planner "
    "(their target gone)", ["status"])
CONSUMER_LAG = Gauge(
    "gavel_consumer_lag", "Messages not yet fetched (highwater minus position) of the "
    "worker's assigned partitions", ["topic", "partition"])

DATABASE_REGISTRY = CollectorRegistry()
OUTBOX_BACKLOG = Gauge(
    "gavel_outbox_backlog", "Outbox rows not yet published to Kafka",
    registry=DATABASE_REGISTRY)
AUDITS_RUNNING = Gauge(
    "gavel_audits_running", "Audit scans running", registry=DATABASE_REGISTRY)


# The labelled series recorded once per message, evaluation or pack run, found once
# each: ``labels`` checks and locks on every call, and took 2 % of a worker's time.
# Label values are few (topics, outcomes, entity types, kinds, pack names); at most
# 1,024 series are kept.
@functools.lru_cache(maxsize=1024)
def _series(metric: MetricWrapperBase, *values: str) -> Any:
    return metric.labels(*values)


def record_consumed(topic: str) -> None:
    _series(EVENTS_CONSUMED, topic).inc()


def record_evaluation(outcome: str, entity_type: str, kind: str,
                      occurred_at: datetime) -> None:
    """Count one newly stored evaluation and observe its latency from the event's time."""
    _series(EVALUATIONS, outcome, entity_type, kind).inc()
    # producers' clocks may run ahead of ours: never observe a negative latency
    latency = max(0.0, (datetime.now(UTC) - occurred_at).total_seconds())
    _series(EVALUATION_LATENCY, entity_type).observe(latency)


def record_pack_duration(pack: str, milliseconds: float) -> None:
    _series(PACK_DURATION, pack).observe(milliseconds / 1000)


def record_pack_load() -> None:
    PACK_LOADS.inc()


def record_pack_unload() -> None:
    PACK_UNLOADS.inc()


def record_audit_finished(status: str) -> None:
    AUDITS_FINISHED.labels(status).inc()


def record_dead_letter(topic: str) -> None:
    DEAD_LETTERS.labels(topic).inc()


def record_unpublished(topic: str) -> None:
    UNPUBLISHED.labels(topic).inc()


def set_consumer_lag(lags: Mapping[tuple[str, int], int]) -> None:
    """Replace the lag of every partition: revoked partitions disappear."""
    CONSUMER_LAG.clear()
    for (topic, partition), lag in lags.items():
        CONSUMER_LAG.labels(topic, str(partition)).set(lag)


async def refresh_database_gauges(pool: asyncpg.Pool, timeout: float = 2.0) -> None:
    """Read the outbox backlog and running audits; NaN when Postgres does not answer,
    so a dashboard shows a gap instead of a stale number."""
    try:
        async with asyncio.timeout(timeout), pool.acquire() as conn:
            outbox = await backlog(conn)
            running = await conn.fetchval("SELECT count(*) FROM audits WHERE status = 'running'")
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        log.warning("metrics: cannot read Postgres gauges (%r)", exc)
        outbox = running = math.nan
    OUTBOX_BACKLOG.set(outbox)
    AUDITS_RUNNING.set(running)


def render(*, with_database: bool) -> bytes:
    """The text exposition of the process's metrics (and the Postgres gauges)."""
    text = generate_latest(REGISTRY)
    if with_database:
        text += generate_latest(DATABASE_REGISTRY)
    return text
