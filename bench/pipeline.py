"""pipeline: stack events through Kafka, the worker, OPA and Postgres, against raw OPA.

The worker runs as a separate ``python -m gavel.cli worker`` process. A warm-up batch
goes through first (consumer group joined, pack modules loaded in OPA, and enough
messages for the broker's JVM to compile its hot paths: cold, it spends about 3x the
CPU per message, which on a shared machine comes out of OPA's share), and the
database is analyzed (``bench.scratch.analyze``); then N events
are produced, each stamped ``occurredAt`` when sent, and the run ends when all N
evaluations are in Postgres. Latency is ``occurredAt -> evaluations.finished_at``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from bench import raw_opa
from bench.cpu_meter import CpuMeter, add_cpu_shares
from bench.events import stack_event
from bench.packs import ORG, set_up_org
from bench.processes import GavelProcess
from bench.report import Report, percentile
from bench.scratch import analyze, scratch
from bench.worker_process import WorkerProcess
from gavel.db import pool_context
from gavel.evaluation_counts import ReceivedCounts
from gavel.events import StackEvent, now_rfc3339
from gavel.kafka import ensure_topics, make_producer
from gavel.settings import Settings

PACK_CONFIG: dict[str, Any] = {"required-tags": {"requiredTags": ["owner"]}}
POLL_SECONDS = 0.2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=2000, help="stack events (default 2000)")
    parser.add_argument("--resources", type=int, default=10, help="resources per event")
    parser.add_argument("--packs", type=int, default=1, help="copies of aws-baseline applied")
    parser.add_argument("--warm-up", type=int, default=3000, metavar="EVENTS",
                        help="uncounted events through the worker first (default 3000)")
    parser.add_argument("--warm-up-seconds", type=float, default=60.0, metavar="SECONDS",
                        help="repeat the warm-up events until this long has passed "
                             "(default 60: a broker started just before compiles its hot "
                             "paths during its first minute)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="give up waiting for evaluations after this many seconds")
    parser.add_argument("--profile", metavar="FILE",
                        help="sample the worker with py-spy during the timed run (speedscope)")
    parser.add_argument("--seed", type=int, default=1)
    # OPA's best throughput for single-event queries on this machine was at about 16
    # requests in flight; more only queues inside OPA
    parser.add_argument("--raw-concurrency", type=int, default=16,
                        help="events in flight in the raw OPA measurement (default 16)")


async def run(args: argparse.Namespace) -> Report:
    report = Report("pipeline", {"events": args.events, "resources": args.resources,
                                 "packs": args.packs, "warm-up events": args.warm_up,
                                 "warm-up seconds": args.warm_up_seconds})
    async with scratch(with_topics=True) as (settings, env):
        report.parameters["concurrency"] = settings.worker.concurrency
        report.parameters["raw OPA concurrency"] = args.raw_concurrency
        async with pool_context(settings.database) as pool:
            version_ids = await set_up_org(pool, args.packs, PACK_CONFIG)
            events = _events(args, "run")
            workers: list[GavelProcess] = []
            meter = CpuMeter(settings, lambda: workers)
            samples: list[tuple[float, dict[str, float]]] = []
            raw = await raw_opa.measure(
                settings, pool, version_ids, PACK_CONFIG,
                [StackEvent.model_validate(v) for _, v in events], args.raw_concurrency,
                lambda: samples.append((time.perf_counter(), meter.sample())))
            report.add("raw OPA throughput", raw, "events/s")
            await ensure_topics(settings.kafka)
            await _through_worker(args, settings, env, pool, events, raw, report,
                                  meter, workers)
            (began, before), (ended, after) = samples
            add_cpu_shares(report, "raw OPA", before, after, ended - began)
    return report


def _events(args: argparse.Namespace, run: str, count: int | None = None
            ) -> list[tuple[bytes, dict[str, Any]]]:
    rng = random.Random(f"{args.seed}-{run}")
    return [stack_event(rng, ORG, i, args.resources, run)
            for i in range(args.events if count is None else count)]


async def _through_worker(args: argparse.Namespace, settings: Settings, env: dict[str, str],
                          pool: asyncpg.Pool, events: list[tuple[bytes, dict[str, Any]]],
                          raw: float, report: Report, meter: CpuMeter,
                          workers: list[GavelProcess]) -> None:
    log_path = Path(tempfile.gettempdir()) / f"{env['GAVEL_KAFKA_CONSUMER_GROUP']}.log"
    worker = WorkerProcess(env, log_path)
    workers.append(worker)
    producer = make_producer(settings.kafka)
    await producer.start()
    worker.start()
    try:
        warming = time.monotonic()
        stored_so_far = ReceivedCounts(
            await pool.fetchval("SELECT id FROM orgs WHERE name = $1", ORG), ())
        stored = await stored_so_far.total(pool)
        for warm_round in itertools.count():
            warm = _events(args, f"warm{warm_round}", max(1, args.warm_up))
            await _produce(producer, settings, warm)
            stored = await _wait_for(pool, worker, stored_so_far, f"warm{warm_round}",
                                     len(warm), args.timeout, log_path, stored)
            if time.monotonic() - warming >= args.warm_up_seconds:
                break
        report.add("warm-up", f"{(warm_round + 1) * len(warm)} events in "
                              f"{time.monotonic() - warming:.0f} s")
        await analyze(pool)
        if args.profile:
            worker.start_profile(Path(args.profile))
        before = meter.sample()
        began = time.time()
        await _produce(producer, settings, events)
        produced = time.time() - began
        await _wait_for(pool, worker, stored_so_far, "run", len(events), args.timeout,
                        log_path, stored)
        after = meter.sample()
        worker.stop_profile()
        await _figures(pool, began, produced, len(events), raw, report)
        add_cpu_shares(report, "pipeline", before, after, time.time() - began)
    finally:
        worker.stop()
        await producer.stop()
    report.add("worker log", str(log_path))


async def _produce(producer: Any, settings: Settings,
                   events: list[tuple[bytes, dict[str, Any]]]) -> None:
    topic = settings.kafka.topic_stack_events
    sent = []
    for key, value in events:
        value["occurredAt"] = now_rfc3339()
        sent.append(await producer.send(topic, key=key, value=orjson.dumps(value)))
    await asyncio.gather(*sent)


async def _wait_for(pool: asyncpg.Pool, worker: WorkerProcess, stored_so_far: ReceivedCounts,
                    run: str, count: int, timeout: float, log_path: Path, before: int) -> int:
    """Wait until ``count`` evaluations more than ``before`` are stored; how many are.
    They are told by the counts the database keeps (a count of the evaluations table
    scans it, and polled every POLL_SECONDS it was about 5 % of Postgres's CPU in a
    run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stored = await stored_so_far.total(pool)
        if stored >= before + count:
            return stored
        if not worker.alive():
            raise SystemExit(f"the worker exited; see {log_path}")
        await asyncio.sleep(POLL_SECONDS)
    raise SystemExit(f"{run}: only {stored - before} of {count} evaluations after "
                     f"{timeout:.0f}s; see {log_path}")


async def _figures(pool: asyncpg.Pool, began: float, produced: float, count: int,
                   raw: float, report: Report) -> None:
    rows = await pool.fetch(
        """SELECT extract(epoch FROM occurred_at) AS occurred,
                  extract(epoch FROM finished_at) AS finished, outcome
           FROM evaluations WHERE event_id LIKE 'run-%'""")
    latencies = [float(r["finished"] - r["occurred"]) * 1000 for r in rows]
    elapsed = max(float(r["finished"]) for r in rows) - began
    throughput = count / elapsed
    report.add("produce rate", count / produced, "events/s")
    report.add("pipeline throughput", throughput, "events/s")
    report.add("pipeline / raw OPA", throughput / raw, "ratio")
    for name, fraction in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
        report.add(f"end-to-end latency {name}", percentile(latencies, fraction), "ms")
    report.add("evaluations with outcome error", sum(r["outcome"] == "error" for r in rows))
