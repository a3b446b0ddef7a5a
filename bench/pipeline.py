"""pipeline: stack events through Kafka, the worker, OPA and Postgres, against raw OPA.

The worker runs as a separate ``python -m gavel.cli worker`` process. A warm-up batch
goes through first (consumer group joined, pack modules loaded in OPA, and enough
messages for the broker's JVM to compile its hot paths: cold, it spends about 3x the
CPU per message, which on a shared machine comes out of OPA's share), and the
database is vacuumed and analyzed (``bench.scratch.vacuum``). Then each round
measures raw OPA on N events and at once the whole pipeline on the same N: they are
produced, each stamped ``occurredAt`` when sent, and the phase ends when all N
evaluations are in Postgres and the database is vacuumed again, with the tables
autovacuum would analyze. That is the pipeline's: its time counts in the pipeline's
events/s and its CPU in the pipeline's, and the next round's raw OPA starts with
nothing left for autovacuum to do. The history tables, when due, are analyzed after
that and counted in neither (``bench.scratch.HISTORY``). Latency is
``occurredAt -> evaluations.finished_at``.

The two are measured side by side, round after round, because on a shared virtual
machine the CPU the host leaves to it drifts by a quarter within minutes: a raw OPA
figure taken a minute before the pipeline's compared two different machines.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

import asyncpg
import orjson

from bench import raw_opa
from bench.cpu_meter import STOLEN, CpuMeter, add_cpu_shares
from bench.events import stack_event
from bench.packs import ORG, set_up_org
from bench.processes import GavelProcess
from bench.report import Report, percentile
from bench.scratch import analyze_history, scratch, vacuum
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
    parser.add_argument("--rounds", type=int, default=3,
                        help="raw OPA then the pipeline, each on N events, this many times "
                             "(default 3); the figures are the rounds' medians")
    parser.add_argument("--seed", type=int, default=1)
    # OPA's best throughput for single-event queries on this machine was at about 16
    # requests in flight; more only queues inside OPA
    parser.add_argument("--raw-concurrency", type=int, default=16,
                        help="events in flight in the raw OPA measurement (default 16)")


async def run(args: argparse.Namespace) -> Report:
    report = Report("pipeline", {"events": args.events, "resources": args.resources,
                                 "packs": args.packs, "rounds": args.rounds,
                                 "warm-up events": args.warm_up,
                                 "warm-up seconds": args.warm_up_seconds})
    async with scratch(with_topics=True) as (settings, env):
        report.parameters["concurrency"] = settings.worker.concurrency
        report.parameters["raw OPA concurrency"] = args.raw_concurrency
        async with pool_context(settings.database) as pool:
            version_ids = await set_up_org(pool, args.packs, PACK_CONFIG)
            await ensure_topics(settings.kafka)
            workers: list[GavelProcess] = []
            meter = CpuMeter(settings, lambda: workers)
            async with _Pipeline(args, settings, env, pool, workers) as pipeline:
                await pipeline.warm_up(report)
                rounds = [await _round(args, settings, pool, version_ids, pipeline, meter,
                                       f"run{i}", i == 0)
                          for i in range(args.rounds)]
            report.add("worker log", str(pipeline.log_path))
            await _figures(pool, rounds, report)
    return report


def _events(args: argparse.Namespace, run: str, count: int | None = None
            ) -> list[tuple[bytes, dict[str, Any]]]:
    rng = random.Random(f"{args.seed}-{run}")
    return [stack_event(rng, ORG, i, args.resources, run)
            for i in range(args.events if count is None else count)]


@dataclass
class _Phase:
    """One timed phase of a round: its events/s, and the CPU seconds each process spent
    in the ``seconds`` between the two samples."""

    events: int
    throughput: float
    seconds: float
    before: dict[str, float]
    after: dict[str, float]
    vacuum_seconds: float = 0.0
    history_analyzed_seconds: float = 0.0


@dataclass
class _Round:
    run: str
    raw: _Phase
    piped: _Phase


async def _round(args: argparse.Namespace, settings: Settings, pool: asyncpg.Pool,
                 version_ids: list[int], pipeline: _Pipeline, meter: CpuMeter, run: str,
                 profiled: bool) -> _Round:
    """Raw OPA, then the whole pipeline, on the same N events, one right after the other."""
    events = _events(args, run)
    samples: list[tuple[float, dict[str, float]]] = []
    raw = await raw_opa.measure(
        settings, pool, version_ids, PACK_CONFIG,
        [StackEvent.model_validate(v) for _, v in events], args.raw_concurrency,
        lambda: samples.append((time.perf_counter(), meter.sample())))
    (began, before), (ended, after) = samples
    raw_phase = _Phase(len(events), raw, ended - began, before, after)
    if profiled and args.profile:
        pipeline.worker.start_profile(Path(args.profile))
    before = meter.sample()
    began = time.time()
    await pipeline.send(events, run)
    pipeline.worker.stop_profile()
    vacuumed = await vacuum(pool, analyze=False)
    after = meter.sample()
    sampled = time.time() - began
    history_analyzed = await analyze_history(pool)
    finished = await pool.fetchval(
        "SELECT extract(epoch FROM max(finished_at)) FROM evaluations WHERE event_id LIKE $1",
        f"{run}-%")
    return _Round(run, raw_phase,
                  _Phase(len(events), len(events) / (float(finished) - began + vacuumed),
                         sampled, before, after, vacuumed, history_analyzed))


class _Pipeline:
    """The worker process and a producer to its topic, and how many evaluations the
    org has stored so far."""

    def __init__(self, args: argparse.Namespace, settings: Settings, env: dict[str, str],
                 pool: asyncpg.Pool, workers: list[GavelProcess]) -> None:
        self.log_path = Path(tempfile.gettempdir()) / f"{env['GAVEL_KAFKA_CONSUMER_GROUP']}.log"
        self.worker = WorkerProcess(env, self.log_path)
        workers.append(self.worker)
        self._args = args
        self._settings = settings
        self._pool = pool
        self._producer = make_producer(settings.kafka)
        self._stored = 0
        self._stored_so_far: ReceivedCounts | None = None

    async def __aenter__(self) -> _Pipeline:
        await self._producer.start()
        self.worker.start()
        self._stored_so_far = ReceivedCounts(
            await self._pool.fetchval("SELECT id FROM orgs WHERE name = $1", ORG), ())
        self._stored = await self._stored_so_far.total(self._pool)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.worker.stop()
        await self._producer.stop()

    async def warm_up(self, report: Report) -> None:
        """Warm-up rounds until the warm-up seconds have passed, then VACUUM (ANALYZE)."""
        warming = time.monotonic()
        for warm_round in itertools.count():
            warm = _events(self._args, f"warm{warm_round}", max(1, self._args.warm_up))
            await self.send(warm, f"warm{warm_round}")
            if time.monotonic() - warming >= self._args.warm_up_seconds:
                break
        report.add("warm-up", f"{(warm_round + 1) * len(warm)} events in "
                              f"{time.monotonic() - warming:.0f} s")
        await vacuum(self._pool, analyze=True)

    async def send(self, events: list[tuple[bytes, dict[str, Any]]], run: str) -> None:
        """Produce the events and wait until the worker has stored all of them."""
        await _produce(self._producer, self._settings, events)
        assert self._stored_so_far is not None
        self._stored = await _wait_for(self._pool, self.worker, self._stored_so_far, run,
                                       len(events), self._args.timeout, self.log_path,
                                       self._stored)


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


async def _figures(pool: asyncpg.Pool, rounds: list[_Round], report: Report) -> None:
    """Each round's events/s and ratio; the medians; latency over all rounds; the CPU
    each process spent in each kind of phase, over all rounds."""
    for number, done in enumerate(rounds, 1):
        report.add(f"round {number} raw OPA throughput", done.raw.throughput, "events/s")
        report.add(f"round {number} pipeline throughput", done.piped.throughput, "events/s")
        report.add(f"round {number} pipeline / raw OPA",
                   done.piped.throughput / done.raw.throughput, "ratio")
    report.add("raw OPA throughput", median(d.raw.throughput for d in rounds), "events/s")
    report.add("pipeline throughput", median(d.piped.throughput for d in rounds), "events/s")
    report.add("pipeline / raw OPA",
               median(d.piped.throughput / d.raw.throughput for d in rounds), "ratio")
    report.add("pipeline's vacuum, counted in its events/s",
               1000 * median(d.piped.vacuum_seconds for d in rounds), "ms (median)")
    report.add("history analyzed between phases, in neither",
               ", ".join(f"{d.piped.history_analyzed_seconds:.2f}" for d in rounds),
               "s (each round)")
    latencies: list[float] = []
    errors = 0
    for done in rounds:
        rows = await pool.fetch(
            """SELECT extract(epoch FROM finished_at - occurred_at) * 1000 AS latency,
                      outcome
               FROM evaluations WHERE event_id LIKE $1""", f"{done.run}-%")
        latencies += [float(r["latency"]) for r in rows]
        errors += sum(r["outcome"] == "error" for r in rows)
    for name, fraction in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
        report.add(f"end-to-end latency {name}", percentile(latencies, fraction), "ms")
    report.add("evaluations with outcome error", errors)
    per_event: dict[str, float] = {}
    for label, phases in (("pipeline", [d.piped for d in rounds]),
                          ("raw OPA", [d.raw for d in rounds])):
        spent = {name: sum(p.after[name] - p.before[name] for p in phases)
                 for name in set(phases[0].before) & set(phases[0].after)}
        add_cpu_shares(report, label, {name: 0.0 for name in spent}, spent,
                       sum(p.seconds for p in phases))
        events = sum(p.events for p in phases)
        for name in sorted(spent):
            if name != STOLEN and spent[name] > 0:
                report.add(f"{label} CPU per event {name}", 1000 * spent[name] / events, "ms")
        used = sum(seconds for name, seconds in spent.items() if name != STOLEN)
        per_event[label] = 1000 * used / events
        report.add(f"{label} CPU per event", per_event[label], "ms (all processes)")
    # what the ratio of events/s would be if both phases had the same CPU to spend
    report.add("pipeline / raw OPA by CPU per event",
               per_event["raw OPA"] / per_event["pipeline"], "ratio")
