"""audit: re-evaluating the last known resources of every stack of an audit-mode group,
through one worker process, then (a fresh audit) through two.

S stacks (default 1,000) with R resources each (default 100) are members of one audit
group applying aws-baseline, written straight to Postgres. The API process plans the
audit (chunk messages on the audit-chunk topic); the workers share those partitions in
one consumer group and are started, and seen to own partitions, before each audit is
requested. Duration is the audit's own ``startedAt`` -> ``finishedAt``. An uncounted
audit through one worker comes first, so that every timed audit replaces a current
state that is there. Before each timed audit the database is vacuumed and analyzed
(``bench.scratch.vacuum``): the statistics a running installation has, and
no dead rows left by the audit before, whose vacuum would otherwise run during the
next one.

The workers share the stack's OPA unless ``--opa-per-worker`` gives each one of its
own, as the Kubernetes manifest does; ``--worker-cpus`` holds each worker and its OPA
to CPUs of its own, as a pod's CPU limit would. Started under ``taskset``, the stack's
servers and the API keep to the other CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from bench.audit_seed import seed_audit_group
from bench.consumer_group import wait_until_shared
from bench.cpu_meter import CpuMeter, add_cpu_shares
from bench.gavel_client import GavelClient, UnexpectedAnswer
from bench.http_setup import PACK_CONFIG, org_token
from bench.packs import ORG
from bench.processes import load_average, parse_cpus
from bench.report import Report
from bench.scratch import scratch, vacuum
from bench.services import Services, services
from gavel.db import pool_context
from gavel.settings import Settings

GROUP = "audit-baseline"
POLL_SECONDS = 0.5
FINISHED = ("completed", "failed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stacks", type=int, default=1000)
    parser.add_argument("--resources", type=int, default=100, help="resources per stack")
    parser.add_argument("--workers", default="1,2",
                        help="worker processes per audit, comma-separated (default 1,2)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="give up on one audit after this many seconds")
    parser.add_argument("--profile", metavar="DIR",
                        help="sample the API and the workers with py-spy (speedscope)")
    parser.add_argument("--opa-per-worker", action="store_true",
                        help="give each worker an OPA of its own, as the Kubernetes "
                             "manifest does, instead of all sharing the stack's")
    parser.add_argument("--worker-cpus", nargs="+", type=_cpu_list, default=[],
                        metavar="CPUS",
                        help="hold the i-th worker (and its own OPA) to the i-th CPU list, "
                             "e.g. --worker-cpus 2-3 4-5: one per worker")
    parser.add_argument("--seed", type=int, default=1)


def _cpu_list(text: str) -> frozenset[int]:
    try:
        cpus = parse_cpus(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    present = os.cpu_count() or 1
    if max(cpus) >= present:
        raise argparse.ArgumentTypeError(f"{text}: this machine's CPUs are 0-{present - 1}")
    return cpus


@dataclass(frozen=True)
class Placement:
    """Where the workers run: with an OPA each or the stack's, on which CPUs."""

    own_opa: bool
    cpu_sets: list[frozenset[int]]


@dataclass
class AuditRun:
    workers: int
    document: dict[str, Any]
    wall_seconds: float
    peak_memory_mib: dict[str, float]
    cpu_before: dict[str, float]
    cpu_after: dict[str, float]

    @property
    def seconds(self) -> float:
        started, finished = self.document["startedAt"], self.document["finishedAt"]
        if not started or not finished:
            return self.wall_seconds
        return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)
                ).total_seconds()


async def run(args: argparse.Namespace) -> Report:
    counts = [int(n) for n in args.workers.split(",")]
    if args.worker_cpus and len(args.worker_cpus) < max(counts):
        raise SystemExit(f"--worker-cpus: {len(args.worker_cpus)} CPU lists for up to "
                         f"{max(counts)} workers; give one per worker")
    report = Report("audit", {"stacks": args.stacks, "resources": args.resources,
                              "workers": args.workers,
                              "OPA": "one per worker" if args.opa_per_worker else "shared"})
    if args.worker_cpus:
        report.parameters["worker CPUs"] = " | ".join(
            ",".join(map(str, sorted(cpus))) for cpus in args.worker_cpus)
    placement = Placement(args.opa_per_worker, args.worker_cpus)
    async with scratch(with_topics=True) as (settings, env), \
            pool_context(settings.database) as pool, \
            services(settings, env, args.profile) as running:
        report.add("load average at start (1/5/15 min)", load_average())
        org_id, token = await org_token(pool)
        resources = await seed_audit_group(pool, org_id, GROUP, args.stacks, args.resources,
                                           PACK_CONFIG, random.Random(args.seed))
        report.add("resources in the group", resources)
        report.parameters["chunk size"] = settings.audit.chunk_size
        report.parameters["partitions"] = settings.kafka.partitions
        report.parameters["worker concurrency"] = settings.worker.concurrency
        await running.start_api()
        meter = CpuMeter(settings, running.processes)
        async with aiohttp.ClientSession() as session:
            client = GavelClient(session, running.base_url, ORG, token)
            if await _audit(client, running, meter, settings, 1, placement, args.timeout) is None:
                report.add("audit", "pending: POST /api/orgs/{org}/audits answers 404")
                return report
            runs = []
            for workers in counts:
                await vacuum(pool, analyze=True)
                done = await _audit(client, running, meter, settings, workers, placement,
                                    args.timeout)
                if done is None:
                    report.add("audit", "pending: POST /api/orgs/{org}/audits answers 404")
                    return report
                runs.append(done)
                _add_run(report, done, resources)
        if len(runs) >= 2:
            report.add(f"speed {runs[-1].workers} workers / {runs[0].workers} worker",
                       runs[0].seconds / runs[-1].seconds, "ratio")
        report.add("load average at end (1/5/15 min)", load_average())
        report.add("logs", running.log_paths())
    return report


async def _audit(client: GavelClient, running: Services, meter: CpuMeter,
                 settings: Settings, workers: int, placement: Placement,
                 timeout: float) -> AuditRun | None:
    """One audit of the group with ``workers`` fresh worker processes; None if the
    endpoint is missing."""
    started = running.start_workers(workers, own_opa=placement.own_opa,
                                    cpu_sets=placement.cpu_sets)
    try:
        await wait_until_shared(settings.kafka, settings.kafka.consumer_group,
                                settings.kafka.topic_audit_chunks, workers)
        cpu_before = meter.sample()
        began = time.perf_counter()
        with running.profiled(f"audit-{workers}-workers"):
            try:
                answer = await client.call("POST", f"/api/orgs/{ORG}/audits",
                                           {"policyGroup": GROUP}, (202,))
            except UnexpectedAnswer as exc:
                if exc.status == 404:
                    return None
                raise
            document = await _until_finished(client, running, str(answer["id"]), timeout)
        wall = time.perf_counter() - began
        memory = {w.name: w.peak_memory_mib() for w in started}
        return AuditRun(workers, document, wall, memory, cpu_before, meter.sample())
    finally:
        running.stop_workers()


async def _until_finished(client: GavelClient, running: Services, audit_id: str,
                          timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        document = await client.call("GET", f"/api/orgs/{ORG}/audits/{audit_id}")
        if document["status"] in FINISHED:
            return dict(document)
        running.check_alive()
        if time.monotonic() > deadline:
            raise SystemExit(f"audit {audit_id} not finished after {timeout:.0f}s: "
                             f"{document}; see {running.log_paths()}")
        await asyncio.sleep(POLL_SECONDS)


def _add_run(report: Report, done: AuditRun, resources: int) -> None:
    at = f"{done.workers} worker{'s' if done.workers > 1 else ''}"
    doc = done.document
    report.add(f"{at}: status", doc["status"])
    report.add(f"{at}: duration", done.seconds, "s")
    report.add(f"{at}: resources/s", resources / done.seconds, "resources/s")
    report.add(f"{at}: entities evaluated / failed / total",
               f"{doc['evaluated']} / {doc['failed']} / {doc['total']}")
    report.add(f"{at}: violations advisory / mandatory",
               f"{doc['violations']['advisory']} / {doc['violations']['mandatory']}")
    for name, memory in done.peak_memory_mib.items():
        report.add(f"{at}: peak memory (VmHWM) {name}", memory, "MiB")
    add_cpu_shares(report, f"{at}:", done.cpu_before, done.cpu_after, done.wall_seconds)
