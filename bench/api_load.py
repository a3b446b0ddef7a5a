"""api: requests/s and latency of read endpoints at a fixed concurrency.

The API runs as a separate ``python -m gavel.cli api`` process; this process is the
load generator (aiohttp, C concurrent clients, closed loop). Measured:

- ``GET /api/orgs/{org}/policygroups/{group}`` for a group of S stacks applying
  aws-baseline (set up over HTTP);
- ``GET /api/orgs/{org}/violations?page[size]=100&page[number]=N``, first with N = 1,
  then N uniform over all pages, with V current violations written straight to
  Postgres (100 per stack).

The CPU share of each process (API, Postgres, generator) shows which one is the limit.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from bench.closed_loop import LoadResult, closed_loop
from bench.cpu_meter import CpuMeter, add_cpu_shares
from bench.events import PROJECTS
from bench.gavel_client import GavelClient, UnexpectedAnswer
from bench.http_setup import group_applying_baseline, org_token
from bench.packs import ORG
from bench.processes import load_average
from bench.report import Report, percentile
from bench.scratch import scratch
from bench.services import Services, services
from bench.violation_seed import seed_current_violations
from gavel.db import pool_context

GROUP = "api-group"
PAGE_SIZE = 100
VIOLATIONS_PER_STACK = 100
WARM_UP_SECONDS = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15.0, help="per endpoint")
    parser.add_argument("--stacks", type=int, default=50, help="stacks in the group")
    parser.add_argument("--violations", type=int, default=100_000,
                        help="current violations seeded")
    parser.add_argument("--profile", metavar="DIR",
                        help="sample the API process with py-spy (speedscope)")
    parser.add_argument("--seed", type=int, default=1)


async def run(args: argparse.Namespace) -> Report:
    report = Report("api", {"concurrency": args.concurrency, "seconds": args.seconds,
                            "stacks": args.stacks, "violations": args.violations})
    stacks = [(PROJECTS[i % len(PROJECTS)], f"stack-{i}") for i in range(args.stacks)]
    async with scratch(with_topics=True) as (settings, env), \
            pool_context(settings.database) as pool, \
            services(settings, env, args.profile) as running:
        report.add("load average at start (1/5/15 min)", load_average())
        org_id, token = await org_token(pool)
        await running.start_api()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(
                limit=args.concurrency)) as session:
            client = GavelClient(session, running.base_url, ORG, token)
            await group_applying_baseline(client, GROUP, "preventative", stacks)
            seeded = await seed_current_violations(
                pool, org_id, GROUP, max(1, args.violations // VIOLATIONS_PER_STACK),
                VIOLATIONS_PER_STACK)
            report.add("current violations seeded", seeded)
            load = Load(args, client, running, CpuMeter(settings, running.processes), report)
            group_url = f"{running.base_url}/api/orgs/{ORG}/policygroups/{GROUP}"
            await load.measure("GET policy group", lambda _: group_url)
            await _violations(load, seeded)
        report.add("load average at end (1/5/15 min)", load_average())
    return report


@dataclass
class Load:
    args: argparse.Namespace
    client: GavelClient
    running: Services
    meter: CpuMeter
    report: Report

    async def measure(self, label: str, url_for: Callable[[int], str]) -> None:
        """A warm-up, then ``--seconds`` of closed-loop GETs of ``url_for(n)``."""
        session, headers = self.client.session, self.client.headers
        await closed_loop(session, url_for, headers, self.args.concurrency, WARM_UP_SECONDS)
        before = self.meter.sample()
        slug = "".join(c if c.isalnum() else "-" for c in label.lower())
        with self.running.profiled(f"api-{slug}"):
            result = await closed_loop(session, url_for, headers, self.args.concurrency,
                                       self.args.seconds)
        after = self.meter.sample()
        self.running.check_alive()
        _add(self.report, label, result)
        add_cpu_shares(self.report, f"{label}:", before, after, result.seconds)


async def _violations(load: Load, seeded: int) -> None:
    report, client = load.report, load.client
    base = f"/api/orgs/{ORG}/violations?page[size]={PAGE_SIZE}&page[number]="
    try:
        first = await client.call("GET", base + "1")
    except UnexpectedAnswer as exc:
        if exc.status != 404:
            raise
        report.add("GET violations", "pending: the endpoint answers 404")
        return
    items = first.get("data", first.get("violations"))
    report.add("violations page 1: items", len(items) if isinstance(items, list) else "none")
    report.add("violations page 1: list key", "data" if "data" in first else
               ", ".join(k for k in first if k not in ("links", "meta")))
    first_url = f"{client.base_url}{base}1"
    await load.measure("GET violations page 1", lambda _: first_url)
    pages = max(1, seeded // PAGE_SIZE)
    rng = random.Random(load.args.seed)
    await load.measure(f"GET violations page 1..{pages}",
                       lambda _: f"{client.base_url}{base}{rng.randint(1, pages)}")


def _add(report: Report, label: str, result: LoadResult) -> None:
    report.add(f"{label}: requests/s", result.ok / result.seconds, "req/s")
    for name, fraction in (("p50", 0.50), ("p99", 0.99)):
        report.add(f"{label}: {name}", percentile(result.latencies_ms, fraction), "ms")
    errors = {s: n for s, n in result.statuses.items() if s != 200}
    report.add(f"{label}: non-200 answers",
               ", ".join(f"{n} x {s}" for s, n in sorted(errors.items())) or "0")
