"""store: the worker's store transaction (``store_batch``) alone, ms per batch.

No Kafka, OPA or worker process: finished evaluations are built in memory (3 packs,
``--violations`` among them, 10 by default as the ``queries`` benchmark's entities)
and stored one batch after the other on one connection of a scratch database, after
``--entities`` entities have been given a current state. Three cases per batch size:
evaluations of entities seen for the first time, newer evaluations of stored entities
with other results (their current state is replaced), and with the same results
again. Besides the client's time per batch, the CPU the connection's Postgres backend
spent per evaluation (read from ``/proc``: the server runs on this machine).
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.processes import cpu_seconds
from bench.report import Report, percentile
from bench.scratch import scratch
from gavel.db import pool_context
from gavel.orgs import create_org
from worker.evaluate import PackResult, Violation
from worker.index import Applicable, GroupRef
from worker.store import Finished, store_batch

PACKS = [f"pack-{n:02d}" for n in range(20)]
BASE = datetime(2026, 1, 1, tzinfo=UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--entities", type=int, default=20_000,
                        help="entities with a current state before timing")
    parser.add_argument("--batches", type=int, default=200, help="timed batches per case")
    parser.add_argument("--sizes", default="1,16,64", help="evaluations per batch")
    parser.add_argument("--violations", type=int, default=10,
                        help="violations per evaluation (among its 3 packs)")


def _runs(index: int, variant: int, violations: int) -> list[PackResult]:
    groups = [f"group-{index % 50:02d}", *(["shared"] if index % 3 == 0 else [])]
    runs = []
    for k in range(3):
        pack, version = PACKS[(index + 7 * k) % 20], 1 + (index + k) % 2
        applicable = Applicable(0, pack, version, f"{version}.0.0", {},
                                tuple(GroupRef(g, "audit") for g in groups))
        found = [Violation(groups, pack, version, f"{version}.0.0",
                           f"{pack}-rule-{(index + n + variant) % 5}",
                           "mandatory" if (index * 7 + n + variant) % 10 < 3 else "advisory",
                           f"urn:b{n}", "bucket breaks the rule", None)
                 for n in range(violations) if n % 3 == k]
        runs.append(PackResult(applicable, violations=found))
    return runs


def _finished(org_id: int, index: int, step: int, variant: int, violations: int) -> Finished:
    evaluation_id = uuid.uuid4()
    return Finished(evaluation_id, str(evaluation_id), org_id, "stack",
                    f"proj-{index % 500:03d}/stack-{index:06d}", "update",
                    BASE + timedelta(minutes=step), 10, "mandatory", False,
                    _runs(index, variant, violations), "bench")


class _Case:
    """One case's client time per batch, and its backend's CPU per evaluation."""

    def __init__(self, backend: int) -> None:
        self.backend = backend
        self.batches: list[float] = []
        self.cpu = 0.0
        self.evaluations = 0

    async def timed(self, conn: asyncpg.Connection, batch: list[Finished]) -> None:
        cpu, began = cpu_seconds(self.backend), time.perf_counter()
        await store_batch(conn, batch)
        self.batches.append((time.perf_counter() - began) * 1000)
        self.cpu += cpu_seconds(self.backend) - cpu
        self.evaluations += len(batch)


async def run(args: argparse.Namespace) -> Report:
    sizes = [int(s) for s in args.sizes.split(",")]
    report = Report("store", {"entities": args.entities, "batches": args.batches,
                              "sizes": args.sizes, "violations": args.violations})
    found = args.violations
    rng = random.Random(1)
    async with scratch() as (settings, _env), pool_context(settings.database) as pool:
        org_id, _ = await create_org(pool, "store")
        async with pool.acquire() as conn:
            for start in range(0, args.entities, 64):
                await store_batch(conn, [_finished(org_id, i, 0, 0, found) for i in
                                         range(start, min(args.entities, start + 64))])
            await conn.execute("VACUUM ANALYZE")
            backend = await conn.fetchval("SELECT pg_backend_pid()")
            fresh, clock = args.entities, 0
            for size in sizes:
                cases = {name: _Case(backend) for name in
                         ("new entities", "changed results", "same results")}
                for b in range(args.batches):
                    await cases["new entities"].timed(
                        conn, [_finished(org_id, fresh + n, 0, 0, found) for n in range(size)])
                    fresh += size
                    stored = rng.sample(range(args.entities), size)
                    # each newer than the last, so each replaces the current state
                    for case in ("changed results", "same results"):
                        clock += 1
                        await cases[case].timed(
                            conn, [_finished(org_id, i, clock, 1 + b % 4, found)
                                   for i in stored])
                for name, case in cases.items():
                    report.add(f"batch of {size}, {name}",
                               f"{percentile(case.batches, 0.5):.2f} / "
                               f"{percentile(case.batches, 0.95):.2f}", "ms median / p95")
                    report.add(f"batch of {size}, {name}, Postgres CPU",
                               case.cpu * 1000 / case.evaluations, "ms per evaluation")
    return report
