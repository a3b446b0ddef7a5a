"""packs: publishing and applying many pack versions, and loading them into OPA.

N packs (``pack-00000``…, each the aws-baseline policies) are published one after the
other over HTTP (every publish compile-checks its modules in the checking OPA,
``GAVEL_OPA_CHECK_URL``, which the dev stack runs apart from the worker's), each
applied with ``addPolicyPack`` to a group of its own whose one stack then sends a
``preview`` event: that first evaluation makes the worker load the version's modules
into its OPA, 5 modules (4 policies and a runner) per version, up to
``GAVEL_OPA_MAX_PACK_VERSIONS`` versions (``--max-pack-versions``), beyond which it
removes the least recently used. A second event to the same stack is timed too
(modules already loaded); cold minus warm is the cost of loading the pack into OPA.
``--no-load`` leaves out both events, so the worker loads nothing.

The run stops publishing when ``--budget`` seconds are used up and compares the first
and the last W packs of those done. Groups and stacks are written straight to
Postgres before the API and the worker start; only the timed steps go through HTTP.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import asyncpg

from bench.cpu_meter import CpuMeter, add_cpu_shares
from bench.events import resources
from bench.gavel_client import LONG_POLL_SECONDS, GavelClient
from bench.http_setup import org_token, pack_body
from bench.packs import ORG
from bench.processes import load_average
from bench.report import Report, percentile
from bench.scratch import scratch
from bench.services import services
from gavel.db import pool_context

PROJECT = "packs"
EVENT_RESOURCES = 3
MODULES_PER_PACK = 5  # aws-baseline's 4 policies and the runner module
T = TypeVar("T")
STEPS = ("publish", "activate", "first evaluation", "warm evaluation")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--packs", type=int, default=2000,
                        help="pack versions published and applied (default 2000)")
    parser.add_argument("--window", type=int, default=100,
                        help="how many of the first and of the last packs are compared")
    parser.add_argument("--budget", type=float, default=300.0,
                        help="stop publishing after this many seconds (default 300) and "
                             "compare what was done")
    parser.add_argument("--no-load", action="store_true",
                        help="publish and apply only: no events, so the worker loads nothing")
    parser.add_argument("--max-pack-versions", type=int, metavar="N",
                        help="the worker's GAVEL_OPA_MAX_PACK_VERSIONS (default: its setting)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="give up on one evaluation after this many seconds")
    parser.add_argument("--profile", metavar="DIR",
                        help="sample the API and worker processes with py-spy (speedscope)")


@dataclass
class Timings:
    ms: dict[str, dict[int, float]] = field(default_factory=lambda: {s: {} for s in STEPS})

    async def timed(self, step: str, index: int, call: Awaitable[T]) -> T:
        began = time.perf_counter()
        answer = await call
        self.ms[step][index] = (time.perf_counter() - began) * 1000
        return answer


def _stack(index: int) -> str:
    return f"stack-{index:05d}"


def _group(index: int) -> str:
    return f"pack-group-{index:05d}"


async def run(args: argparse.Namespace) -> Report:
    report = Report("packs", {"packs": args.packs, "budget": args.budget,
                              "load": not args.no_load})
    async with scratch(with_topics=True) as (settings, env), \
            pool_context(settings.database) as pool, \
            services(settings, _worker_env(env, args), args.profile) as running:
        report.add("load average at start (1/5/15 min)", load_average())
        report.add("publish checks in", "a separate OPA" if settings.opa.checks_url !=
                   settings.opa.url else "the worker's OPA")
        report.add("pack versions the worker keeps loaded at most",
                   args.max_pack_versions if args.max_pack_versions is not None
                   else settings.opa.max_pack_versions)
        report.add("modules in the worker's OPA at start", await _modules_held(settings.opa.url))
        org_id, token = await org_token(pool)
        await _groups_with_one_stack(pool, org_id, args.packs)
        await running.start_api()
        running.start_workers(1)
        async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=LONG_POLL_SECONDS + 30)) as session:
            client = GavelClient(session, running.base_url, ORG, token)
            meter = CpuMeter(settings, running.processes)
            before, began = meter.sample(), time.perf_counter()
            with running.profiled("packs"):
                timings, done = await _publish_all(client, args)
            add_cpu_shares(report, "whole run:", before, meter.sample(),
                           time.perf_counter() - began)
        running.check_alive()
        report.add("packs done", done)
        if done < args.packs:
            report.add("stopped early", f"budget of {args.budget:.0f}s used up")
        if not args.no_load:
            report.add("modules the worker loaded into OPA", done * MODULES_PER_PACK)
            report.add("modules in the worker's OPA at the end",
                       await _modules_held(settings.opa.url))
        _figures(report, timings, done, min(args.window, done // 2))
        report.add("load average at end (1/5/15 min)", load_average())
        report.add("logs", running.log_paths())
    return report


def _worker_env(env: dict[str, str], args: argparse.Namespace) -> dict[str, str]:
    if args.max_pack_versions is None:
        return env
    return {**env, "GAVEL_OPA_MAX_PACK_VERSIONS": str(args.max_pack_versions)}


async def _groups_with_one_stack(pool: asyncpg.Pool, org_id: int, count: int) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.copy_records_to_table(
            "stacks", columns=["org_id", "project", "name"],
            records=[(org_id, PROJECT, _stack(i)) for i in range(count)])
        await conn.copy_records_to_table(
            "policy_groups", columns=["org_id", "name", "entity_type", "mode"],
            records=[(org_id, _group(i), "stacks", "preventative") for i in range(count)])
        stacks = dict(await conn.fetch("SELECT name, id FROM stacks WHERE org_id = $1",
                                       org_id))
        groups = dict(await conn.fetch("SELECT name, id FROM policy_groups WHERE org_id = $1",
                                       org_id))
        await conn.copy_records_to_table(
            "policy_group_stacks", columns=["group_id", "stack_id"],
            records=[(groups[_group(i)], stacks[_stack(i)]) for i in range(count)])


async def _publish_all(client: GavelClient, args: argparse.Namespace) -> tuple[Timings, int]:
    timings = Timings()
    deadline = time.monotonic() + args.budget
    event = resources(random.Random(1), PROJECT, "stack", EVENT_RESOURCES)
    done = 0
    for i in range(args.packs):
        if time.monotonic() > deadline:
            break
        name = f"pack-{i:05d}"
        published = await timings.timed("publish", i, client.publish_pack(
            pack_body(name, "1.0.0")))
        await timings.timed("activate", i, client.update_group(_group(i), {"addPolicyPack": {
            "name": name, "version": published["version"]}}))
        for step in () if args.no_load else ("first evaluation", "warm evaluation"):
            document = await timings.timed(step, i, _decide(client, i, event, args.timeout))
            if document["outcome"] == "error" or not document["packs"]:
                raise SystemExit(f"pack {name}: evaluation {document['id']} has outcome "
                                 f"{document['outcome']} and packs {document['packs']}")
        done += 1
    return timings, done


async def _modules_held(opa_url: str) -> int:
    async with aiohttp.ClientSession() as session, \
            session.get(f"{opa_url}/v1/policies") as resp:
        body = await resp.json()
    return sum(1 for policy in body["result"] if policy["id"].startswith("gavel/"))


async def _decide(client: GavelClient, index: int, event: list[dict[str, Any]],
                  timeout: float) -> dict[str, Any]:
    evaluation_id = await client.post_event(PROJECT, _stack(index), "preview", event)
    return await client.finished_evaluation(evaluation_id, timeout)


def _figures(report: Report, timings: Timings, done: int, window: int) -> None:
    first, last = range(0, window), range(done - window, done)
    for step in STEPS:
        medians = []
        for label, indexes in (("first", first), ("last", last)):
            values = [timings.ms[step][i] for i in indexes if i in timings.ms[step]]
            if not values:
                continue
            medians.append(percentile(values, 0.5))
            report.add(f"{step}, {label} {len(values)}: median", medians[-1], "ms")
            report.add(f"{step}, {label} {len(values)}: p95", percentile(values, 0.95), "ms")
        if len(medians) == 2:
            report.add(f"{step}: last / first (medians)", medians[1] / medians[0], "ratio")
    for label, indexes in (("first", first), ("last", last)):
        loads = [timings.ms["first evaluation"][i] - timings.ms["warm evaluation"][i]
                 for i in indexes if i in timings.ms["warm evaluation"]]
        if loads:
            report.add(f"load into OPA (cold - warm), {label}: median",
                       percentile(loads, 0.5), "ms")
    if done:
        for step in ("publish", "first evaluation"):
            if timings.ms[step]:
                report.add(f"{step}: 1st pack", timings.ms[step][0], "ms")
                report.add(f"{step}: pack {done}", timings.ms[step][done - 1], "ms")
