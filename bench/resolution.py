"""resolution: GroupIndex resolve cost, memory and rebuild time for a large org.

G groups (default 10,000) each name 10 stacks drawn from the first half of S stacks
(default 100,000) and apply 1-3 of 20 pack versions; the other half are implicit
members of the default group. Resolves are timed one by one: cold (the org's memo
cleared before each, as after any group change) and warm. Then the default group is
changed (as adding a pack to it does: the index takes its new snapshot) and the
implicit members are timed again. The garbage collector is set as the worker sets it
(``gavel.cli.tune_gc``).
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc
from typing import Any

from bench import seed_groups
from bench.packs import ORG
from bench.report import Report, percentile
from bench.scratch import scratch
from gavel.cli import tune_gc
from gavel.db import pool_context
from worker.group_sync import GroupSync
from worker.index import STACKS, GroupIndex

COLD_RESOLVES = 20_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--stacks", type=int, default=100_000)
    parser.add_argument("--resolves", type=int, default=200_000, help="warm resolves")
    parser.add_argument("--seed", type=int, default=1)


async def run(args: argparse.Namespace) -> Report:
    report = Report("resolution", {"groups": args.groups, "stacks": args.stacks,
                                   "resolves": args.resolves})
    layout = seed_groups.Layout.random(args.groups, args.stacks, random.Random(args.seed))
    tune_gc()
    index, memory = _build_measured(layout)
    report.add("index memory", memory / 2**20, "MiB")
    report.add("explicit stacks (in >= 1 group)", len(layout.explicit_stacks()))
    rng = random.Random(args.seed + 1)
    _time_resolves(index, layout, report, rng, args.resolves)
    _change_default_group(index, layout)
    _time_pool(index, "implicit, default group changed", layout.implicit_stacks(), report,
               rng, args.resolves)
    report.add("rebuild from Postgres (load_all)", await _rebuild_seconds(layout), "s")
    return report


def _build_measured(layout: seed_groups.Layout) -> tuple[GroupIndex, int]:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    snapshots = layout.snapshots(ORG)
    index = GroupIndex()
    index.load_org(ORG, 1, snapshots)
    del snapshots
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return index, after - before


def _time_resolves(index: GroupIndex, layout: seed_groups.Layout, report: Report,
                   rng: random.Random, warm_count: int) -> None:
    for label, pool in (("explicit", layout.explicit_stacks()),
                        ("implicit", layout.implicit_stacks())):
        _time_pool(index, label, pool, report, rng, warm_count)


def _time_pool(index: GroupIndex, label: str, pool: list[str], report: Report,
               rng: random.Random, warm_count: int) -> None:
    cold = _timed(index, [rng.choice(pool) for _ in range(COLD_RESOLVES)], clear=True)
    _timed(index, pool, clear=False)  # every member resolved once: the memo is warm
    warm = _timed(index, [rng.choice(pool) for _ in range(warm_count // 2)], clear=False)
    for memo, times in (("cold", cold), ("warm", warm)):
        report.add(f"resolve {label} {memo} median", percentile(times, 0.5), "µs")
        report.add(f"resolve {label} {memo} p99", percentile(times, 0.99), "µs")


def _change_default_group(index: GroupIndex, layout: seed_groups.Layout) -> None:
    """Apply a new snapshot of the default group with one more pack, as a group-change
    event would carry it."""
    default = layout.snapshots(ORG)[0]
    default["appliedPolicyPacks"] = [*default["appliedPolicyPacks"], seed_groups.applied(1)]
    revision = (index.revision(ORG) or 0) + 1
    if not index.apply_change({"org": ORG, "revision": revision, "groupId": default["id"],
                               "group": default}):
        raise SystemExit("the default group's change was not applied")


def _timed(index: GroupIndex, stacks: list[str], clear: bool) -> list[float]:
    times = []
    revision = index.revision(ORG) or 0
    for stack in stacks:
        if clear:
            # any change in the org drops its memo; deleting an unknown group is the cheapest
            revision += 1
            index.apply_change({"org": ORG, "revision": revision, "groupId": -1,
                                "deleted": True})
        began = time.perf_counter_ns()
        index.resolve(ORG, STACKS, stack)
        times.append((time.perf_counter_ns() - began) / 1000)
    return times


async def _rebuild_seconds(layout: seed_groups.Layout) -> float:
    async with scratch() as (settings, _env):
        await seed_groups.insert(settings.database.url, layout, ORG)
        async with pool_context(settings.database) as pool:
            sync = GroupSync(pool, settings.kafka, GroupIndex())
            began = time.perf_counter()
            await sync.load_all()
            elapsed = time.perf_counter() - began
            found: Any = sync.index.resolve(ORG, STACKS, layout.explicit_stacks()[0])
            if not found:
                raise SystemExit("rebuilt index resolves nothing for an explicit member")
            return elapsed
