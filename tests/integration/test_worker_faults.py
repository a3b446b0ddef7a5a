"""Worker faults against the real Postgres, Kafka and OPA: a worker killed with
SIGKILL, OPA stopped mid-stream, two workers sharing one consumer group. Every
event must end as exactly one stored evaluation with its violations once.

Workers run as separate processes (``gavel worker``) on topics and a consumer group
of their own, so the session's in-process worker never sees these events.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import orjson
import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient

from gavel.kafka import TOPIC_FIELDS, all_topics, ensure_topics, make_producer
from gavel.settings import Settings
from tests.policy_setup import org_id, publish, set_default_group_packs
from tests.worker_process import (
    LoggedProcess,
    free_port,
    opa_healthy,
    opa_process,
    wait_until,
    worker_process,
)

PUBLIC = {"urn": "urn:b1", "type": "aws:s3/bucket:Bucket", "name": "logs",
          "properties": {"acl": "public-read", "tags": {"owner": "web"}}}
UNTAGGED = {"urn": "urn:b2", "type": "aws:s3/bucket:Bucket", "name": "data",
            "properties": {"acl": "private", "tags": {}}}
# one mandatory (public bucket) and one advisory (missing owner tag) violation each
VIOLATIONS_PER_EVENT = 2
Spawn = Callable[[LoggedProcess], LoggedProcess]


@pytest_asyncio.fixture
async def own_settings(settings: Settings) -> AsyncIterator[Settings]:
    """The session's database and servers with fresh topics and a fresh consumer group."""
    tag = f"faults-{uuid.uuid4().hex[:8]}"
    kafka = settings.kafka.model_copy(update={
        "consumer_group": tag,
        # every topic its own: the teardown deletes them all
        **{field: f"{tag}.{field.removeprefix('topic_').replace('_', '-')}"
           for field in TOPIC_FIELDS}})
    own = settings.model_copy(update={"kafka": kafka})
    await ensure_topics(own.kafka)
    yield own
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        with contextlib.suppress(Exception):
            await admin.delete_topics(all_topics(kafka))
    finally:
        await admin.close()


@pytest_asyncio.fixture
async def pack_org(pool: asyncpg.Pool, own_settings: Settings, new_org) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    """An org whose default stack group applies the baseline pack (set up before any
    worker starts, so each worker's Postgres snapshot already has it)."""
    org, _ = await new_org()
    version = await publish(pool, org)
    await set_default_group_packs(pool, own_settings, org, [(version, {})])
    return org, await org_id(pool, org)


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start processes; whatever is still running at the end is killed."""
    started: list[LoggedProcess] = []

    def start(process: LoggedProcess) -> LoggedProcess:
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


async def produce(settings: Settings, org: str, count: int, stacks: int = 20) -> list[str]:
    """Stack events straight to Kafka, spread over ``stacks`` keys; their evaluation ids."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    producer = make_producer(settings.kafka)
    await producer.start()
    try:
        sent = []
        for i, evaluation_id in enumerate(ids):
            stack = f"s{i % stacks}"
            event = {"schema": 1, "eventId": f"fault-{evaluation_id}", "org": org,
                     "occurredAt": "2026-11-21T10:00:00Z", "evaluationId": evaluation_id,
                     "project": "faults", "stack": stack, "kind": "update",
                     "resources": [PUBLIC, UNTAGGED]}
            sent.append(await producer.send(settings.kafka.topic_stack_events,
                                            key=f"{org}/faults/{stack}".encode(),
                                            value=orjson.dumps(event)))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return ids


async def stored(pool: asyncpg.Pool, oid: int) -> int:
    return int(await pool.fetchval(
        "SELECT count(*) FROM evaluations WHERE org_id = $1 AND status = 'finished'", oid))


def tails(*processes: LoggedProcess) -> str:
    return "\n".join(p.tail() for p in processes)


async def wait_stored(pool: asyncpg.Pool, oid: int, count: int, *logs: LoggedProcess,
                      timeout: float = 120) -> None:
    last = [0]

    async def enough() -> bool:
        last[0] = await stored(pool, oid)
        return last[0] >= count

    await wait_until(enough, f"{count} stored evaluations", timeout,
                     lambda: f"stored: {last[0]}\n{tails(*logs)}", interval=0.02)


async def assert_each_once(pool: asyncpg.Pool, oid: int, ids: list[str],
                           *logs: LoggedProcess) -> None:
    """Exactly one finished evaluation per produced id, each with its violations once."""
    where = tails(*logs)
    total, distinct = await pool.fetchrow(
        "SELECT count(*), count(DISTINCT id) FROM evaluations WHERE org_id = $1", oid)
    assert (total, distinct) == (len(ids), len(ids)), where
    found = {str(r["id"]): r["outcome"] for r in await pool.fetch(
        "SELECT id, outcome FROM evaluations WHERE org_id = $1 AND status = 'finished'", oid)}
    assert set(found) == set(ids), f"missing: {len(set(ids) - set(found))}\n{where}"
    assert set(found.values()) == {"mandatory"}, where
    per_evaluation = await pool.fetch(
        "SELECT e.id, count(v.id) AS n, count(DISTINCT v.policy) AS policies "
        "FROM evaluations e LEFT JOIN violations v ON v.evaluation_id = e.id "
        "WHERE e.org_id = $1 GROUP BY e.id", oid)
    wrong = [(str(r["id"]), r["n"]) for r in per_evaluation
             if (r["n"], r["policies"]) != (VIOLATIONS_PER_EVENT, VIOLATIONS_PER_EVENT)]
    assert not wrong, f"violation rows per evaluation: {wrong[:5]}\n{where}"
    assert await pool.fetchval("SELECT count(*) FROM violations WHERE org_id = $1", oid) == \
        len(ids) * VIOLATIONS_PER_EVENT, where


async def test_worker_killed_mid_stream_then_restarted_stores_each_result_once(
        pool: asyncpg.Pool, own_settings: Settings, pack_org: tuple[str, int], spawn: Spawn,
        tmp_path: Path) -> None:
    org, oid = pack_org
    ids = await produce(own_settings, org, 1000)
    first = spawn(worker_process(own_settings, tmp_path / "worker-1.log"))
    await wait_stored(pool, oid, 333, first)
    first.kill()
    at_kill = await stored(pool, oid)
    assert 333 <= at_kill < 1000, f"the kill was not mid-stream: {at_kill} stored"

    second = spawn(worker_process(own_settings, tmp_path / "worker-2.log"))
    await wait_stored(pool, oid, 1000, first, second)
    second.stop()
    assert second.proc is not None and second.proc.returncode == 0, tails(second)
    await assert_each_once(pool, oid, ids, first, second)


async def test_opa_stopped_for_20s_events_wait_and_finish_once(
        pool: asyncpg.Pool, own_settings: Settings, pack_org: tuple[str, int], spawn: Spawn,
        tmp_path: Path) -> None:
    org, oid = pack_org
    port = free_port()
    opa_url = f"http://127.0.0.1:{port}"
    opa = spawn(opa_process(port, tmp_path / "opa.log"))
    await wait_until(lambda: opa_healthy(opa_url), "the dedicated OPA", 30, opa.tail)
    worker = spawn(worker_process(own_settings, tmp_path / "worker.log", opa_url))

    ids = await produce(own_settings, org, 150)
    await wait_stored(pool, oid, 50, worker, opa)
    opa.stop()
    stopped_at = time.monotonic()
    ids += await produce(own_settings, org, 150)

    await asyncio.sleep(3)  # evaluations OPA had already answered may still be stored
    while_down = await stored(pool, oid)
    await asyncio.sleep(20 - (time.monotonic() - stopped_at))
    assert await stored(pool, oid) == while_down < len(ids), tails(worker)
    assert worker.running, tails(worker)

    opa = spawn(opa_process(port, tmp_path / "opa.log"))
    await wait_until(lambda: opa_healthy(opa_url), "OPA back on its port", 30, opa.tail)
    await wait_stored(pool, oid, len(ids), worker, opa)
    await assert_each_once(pool, oid, ids, worker, opa)


ASSIGNED = re.compile(r"assigned \[(.*)\]")


def stack_partitions(process: LoggedProcess, topic: str) -> set[int] | None:
    """The worker's current partitions of ``topic`` per its log; None before any."""
    if not process.log_path.exists():
        return None
    found = ASSIGNED.findall(process.log_path.read_text(errors="replace"))
    if not found:
        return None
    items = [item.strip().strip("'") for item in found[-1].split(",") if item.strip()]
    return {int(item.rsplit(":", 1)[1]) for item in items if item.rsplit(":", 1)[0] == topic}


async def test_two_workers_split_partitions_and_store_each_result_once(
        pool: asyncpg.Pool, own_settings: Settings, pack_org: tuple[str, int], spawn: Spawn,
        tmp_path: Path) -> None:
    org, oid = pack_org
    topic = own_settings.kafka.topic_stack_events
    workers = [spawn(worker_process(own_settings, tmp_path / f"worker-{n}.log"))
               for n in (1, 2)]

    async def split() -> bool:
        first, second = (stack_partitions(w, topic) or set() for w in workers)
        return bool(first) and bool(second) and not first & second

    await wait_until(split, "both workers to hold stack-event partitions", 60,
                     lambda: tails(*workers))
    ids = await produce(own_settings, org, 400, stacks=40)
    await wait_stored(pool, oid, 400, *workers)
    await assert_each_once(pool, oid, ids, *workers)
    first, second = (stack_partitions(w, topic) for w in workers)
    assert first and second and first | second == {0, 1, 2, 3}, tails(*workers)
