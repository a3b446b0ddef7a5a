"""``GET /metrics``: Prometheus text without a token; counters move by exactly what the
events caused (the registry is process-wide, so before/after deltas are compared)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from gavel.kafka import make_consumer, make_producer
from gavel.settings import Settings
from tests.e2e.test_audits import all_audits_finished, estate, finished, publish_baseline
from tests.e2e.test_evaluation_flow import CLEAN, PUBLIC, evaluate
from tests.helpers import auth
from tests.policy_setup import publish, set_default_group_packs

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: TestClient) -> Samples:
    resp = await client.get("/metrics")
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/plain"
    found: Samples = {}
    for family in text_string_to_metric_families(await resp.text()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def settled(pool: asyncpg.Pool, settings: Settings, timeout: float = 60) -> None:
    """Wait until the outbox is published and the worker's group has committed every
    message of the topics it evaluates: nothing left that could move a counter."""
    kafka = settings.kafka
    topics = [kafka.topic_stack_events, kafka.topic_account_events, kafka.topic_audit_chunks]
    partitions = [TopicPartition(t, p) for t in topics for p in range(kafka.partitions)]
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    ends_reader = make_consumer(kafka)
    await admin.start()
    await ends_reader.start()
    try:
        for _ in range(int(timeout * 5)):
            unpublished = await pool.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL")
            ends = await ends_reader.end_offsets(partitions)
            committed = await admin.list_consumer_group_offsets(kafka.consumer_group)
            behind = [tp for tp, end in ends.items()
                      if end > 0 and (tp not in committed or committed[tp].offset < end)]
            if unpublished == 0 and not behind:
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"not settled: {unpublished} outbox rows, behind on {behind}")
    finally:
        await ends_reader.stop()
        await admin.close()


async def produce_bad_event(settings: Settings) -> None:
    producer = make_producer(settings.kafka)
    await producer.start()
    try:
        await producer.send_and_wait(settings.kafka.topic_stack_events, key=b"bad",
                                     value=b"{not json")
    finally:
        await producer.stop()


async def test_metrics_count_what_happened(
        client: TestClient, worker: Any, pool: asyncpg.Pool, settings: Settings,
        new_org) -> None:
    org, token = await new_org()
    pack = f"metrics-{uuid.uuid4().hex[:8]}"
    await set_default_group_packs(pool, settings, org, [(await publish(pool, org, pack), {})])
    await settled(pool, settings)
    before = await scrape(client)

    outcomes = [(await evaluate(client, token, org, "web", "prod", "update", resources))["outcome"]
                for resources in ([PUBLIC], [CLEAN], [PUBLIC, CLEAN])]
    assert outcomes == ["mandatory", "pass", "mandatory"]
    await produce_bad_event(settings)
    await settled(pool, settings)
    after = await scrape(client)

    stack_events = settings.kafka.topic_stack_events
    assert moved(before, after, "gavel_events_consumed_total", topic=stack_events) == 4
    assert moved(before, after, "gavel_dead_letters_total", topic=stack_events) == 1
    assert moved(before, after, "gavel_opa_pack_duration_seconds_count", pack=pack) == 3
    assert moved(before, after, "gavel_opa_pack_duration_seconds_sum", pack=pack) > 0
    assert moved(before, after, "gavel_evaluations_total",
                 outcome="mandatory", entity_type="stack", kind="update") == 2
    assert moved(before, after, "gavel_evaluations_total",
                 outcome="pass", entity_type="stack", kind="update") == 1
    assert moved(before, after, "gavel_evaluation_latency_seconds_count",
                 entity_type="stack") == 3
    assert moved(before, after, "gavel_evaluation_latency_seconds_sum", entity_type="stack") > 0
    assert value(after, "gavel_outbox_backlog") == 0


async def test_consumer_lag_of_every_assigned_partition(
        client: TestClient, worker: Any, pool: asyncpg.Pool, settings: Settings) -> None:
    await settled(pool, settings)
    stack_events = settings.kafka.topic_stack_events
    every_partition = {str(p) for p in range(settings.kafka.partitions)}
    lags: dict[str, float] = {}
    for _ in range(60):  # the worker measures its lag every few seconds
        samples = await scrape(client)
        lags = {dict(labels)["partition"]: lag for (name, labels), lag in samples.items()
                if name == "gavel_consumer_lag" and ("topic", stack_events) in labels}
        if set(lags) == every_partition and not any(lags.values()):
            break
        await asyncio.sleep(0.2)
    assert lags == dict.fromkeys(every_partition, 0.0)
    assert ("gavel_audits_running", frozenset()) in samples


async def test_audits_that_end_are_counted(client: TestClient, worker: Any, pool: asyncpg.Pool,
                                           settings: Settings, new_org) -> None:
    """Completed by the worker that counts the last chunk, or by the planner when there is
    nothing to audit; failed by the planner when the group is gone before it starts."""
    await settled(pool, settings)
    before = await scrape(client)
    org, token = await new_org()
    pack = await publish_baseline(client, org, token)
    api = await estate(client, org, token, "estate", 3)
    add = {"addPolicyPack": {"name": "baseline", "version": pack["version"]}}
    assert (await api.patch("estate", add)).status == 204  # starts an audit after a delay
    assert (await api.create(name="brief", entityType="stacks", mode="audit")).status == 204
    assert (await api.patch("brief", add)).status == 204
    assert (await api.delete("brief")).status == 204  # before its audit starts
    audits = await all_audits_finished(client, org, token)
    empty_org, empty_token = await new_org()  # no accounts for its default audit group
    resp = await client.post(f"/api/orgs/{empty_org}/audits", headers=auth(empty_token))
    empty = await finished(client, empty_org, empty_token, (await resp.json())["id"])
    await settled(pool, settings)
    after = await scrape(client)

    statuses = [a["status"] for a in audits]
    assert sorted(statuses) == ["completed", "failed"], audits
    assert (empty["status"], empty["total"]) == ("completed", 0)
    assert moved(before, after, "gavel_audits_finished_total", status="completed") == 2
    assert moved(before, after, "gavel_audits_finished_total", status="failed") == 1
    assert moved(before, after, "gavel_evaluations_total", outcome="mandatory",
                 entity_type="stack", kind="audit") == 2  # stacks 0 and 2 of 3
