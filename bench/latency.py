"""latency: preventative decisions over HTTP at steady open-loop rates.

The API (with its outbox relay) and one worker run as separate processes. A
preventative group applies aws-baseline to S stacks. At each rate, one ``preview``
event per 1/rate seconds is POSTed to the ingest endpoint and its evaluation
long-polled (``?wait=30``) until finished; latency is POST sent -> long-poll answered.
A warm-up at ``--warm-up-rate`` for ``--warm-up`` seconds, not counted, comes first:
the broker's JVM compiles its hot paths during its first minute or two under load
(Kafka's CPU per message falls about threefold), and a long-running deployment is
measured warm; the database is vacuumed and analyzed after it
(``bench.scratch.vacuum``).
The CPU share of each process (servers, API, worker, generator) during each phase
shows which one saturates.
"""

from __future__ import annotations

import argparse
import random

import aiohttp
import asyncpg

from bench.cpu_meter import CpuMeter, add_cpu_shares
from bench.events import PROJECTS, resources
from bench.gavel_client import LONG_POLL_SECONDS, GavelClient
from bench.http_setup import group_applying_baseline, org_token
from bench.open_loop import Decision, PhaseResult, run_phase
from bench.packs import ORG
from bench.processes import load_average
from bench.report import Report, percentile
from bench.scratch import scratch, vacuum
from bench.services import Services, services
from gavel.db import pool_context

GROUP = "preventative-baseline"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rates", default="20,100,300",
                        help="events/s, comma-separated (default 20,100,300)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each rate")
    parser.add_argument("--resources", type=int, default=10, help="resources per event")
    parser.add_argument("--stacks", type=int, default=200, help="stacks in the group")
    parser.add_argument("--warm-up", type=float, default=90.0, metavar="SECONDS",
                        help="uncounted load before the first rate (default 90)")
    parser.add_argument("--warm-up-rate", type=float, default=100.0,
                        help="events/s during the warm-up (default 100)")
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="give up on one decision after this many seconds")
    parser.add_argument("--profile", metavar="DIR",
                        help="sample the API and worker processes with py-spy (speedscope)")
    parser.add_argument("--seed", type=int, default=1)


async def run(args: argparse.Namespace) -> Report:
    report = Report("latency", {"rates": args.rates, "seconds": args.seconds,
                                "resources": args.resources, "stacks": args.stacks,
                                "warm-up": f"{args.warm_up:g} s at {args.warm_up_rate:g}/s"})
    stacks = [(PROJECTS[i % len(PROJECTS)], f"stack-{i}") for i in range(args.stacks)]
    async with scratch(with_topics=True) as (settings, env), \
            pool_context(settings.database) as pool, \
            services(settings, env, args.profile) as running:
        report.add("load average at start (1/5/15 min)", load_average())
        _, token = await org_token(pool)
        await running.start_api()
        running.start_workers(1)
        report.parameters["worker concurrency"] = settings.worker.concurrency
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=LONG_POLL_SECONDS + 30)) as session:
            client = GavelClient(session, running.base_url, ORG, token)
            await group_applying_baseline(client, GROUP, "preventative", stacks)
            meter = CpuMeter(settings, running.processes)
            await _phases(args, client, running, meter, stacks, report, pool)
        report.add("load average at end (1/5/15 min)", load_average())
        report.add("logs", running.log_paths())
    return report


async def _phases(args: argparse.Namespace, client: GavelClient, running: Services,
                  meter: CpuMeter, stacks: list[tuple[str, str]], report: Report,
                  pool: asyncpg.Pool) -> None:
    rng = random.Random(args.seed)
    warm_up = max(1, round(args.warm_up * args.warm_up_rate))
    warm = await run_phase(client, args.warm_up_rate,
                           _decisions(rng, stacks, warm_up, args.resources), args.timeout)
    if warm.errors:
        raise SystemExit(f"warm-up failed: {warm.errors}; see {running.log_paths()}")
    await vacuum(pool, analyze=True)
    for rate in [float(r) for r in args.rates.split(",")]:
        decisions = _decisions(rng, stacks, max(1, round(rate * args.seconds)),
                               args.resources)
        before = meter.sample()
        began = await pool.fetchval("SELECT now()")
        with running.profiled(f"latency-{rate:g}"):
            result = await run_phase(client, rate, decisions, args.timeout)
        running.check_alive()
        _add_phase(report, result)
        await _add_stages(report, f"{rate:g}/s", pool, began)
        add_cpu_shares(report, f"{rate:g}/s", before, meter.sample(), result.total_seconds)


def _decisions(rng: random.Random, stacks: list[tuple[str, str]], count: int,
               resource_count: int) -> list[Decision]:
    chosen = [rng.choice(stacks) for _ in range(count)]
    return [Decision(p, s, resources(rng, p, s, resource_count)) for p, s in chosen]


# where a decision's time goes, from the rows' own timestamps: accepted by the API ->
# published to Kafka by the outbox relay -> stored by the worker
_STAGES = """
SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (
           ORDER BY extract(epoch FROM o.published_at - e.received_at) * 1000) AS relay,
       percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (
           ORDER BY extract(epoch FROM e.finished_at - o.published_at) * 1000) AS worker
FROM evaluations e JOIN outbox o ON o.value->>'evaluationId' = e.id::text
WHERE e.received_at >= $1 AND e.status = 'finished'
"""


async def _add_stages(report: Report, at: str, pool: asyncpg.Pool, began: object) -> None:
    row = await pool.fetchrow(_STAGES, began)
    for stage, label in (("relay", "accepted -> on Kafka"), ("worker", "on Kafka -> stored")):
        if row[stage] is not None:
            report.add(f"{at} {label} p50", row[stage][0], "ms")
            report.add(f"{at} {label} p99", row[stage][1], "ms")


def _add_phase(report: Report, result: PhaseResult) -> None:
    at = f"{result.rate:g}/s"
    report.add(f"{at} sent", result.sent)
    report.add(f"{at} achieved send rate", result.sent / result.send_seconds, "events/s")
    report.add(f"{at} decided rate (first POST to last answer)",
               len(result.latencies_ms) / result.total_seconds, "events/s")
    for name, fraction in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
        report.add(f"{at} decision latency {name}",
                   percentile(result.latencies_ms, fraction), "ms")
    report.add(f"{at} send lag p99", percentile(result.send_lag_ms, 0.99), "ms")
    for stage, values in result.stages_ms.items():
        for name, fraction in (("p50", 0.50), ("p99", 0.99)):
            report.add(f"{at} {stage} {name}", percentile(values, fraction), "ms")
    report.add(f"{at} errors", sum(result.errors.values()))
    for kind, count in sorted(result.errors.items()):
        report.add(f"{at} errors: {kind}", count)
    report.add(f"{at} outcome error", result.outcomes.get("error", 0))
