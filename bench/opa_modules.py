"""opa-modules: how long OPA takes to add and remove a pack version's modules as
the number of modules it holds grows.

For each module form (``--forms``) and each count of pack versions already loaded
(``--loaded``), a private OPA (the dev stack's binary, on a free port) starts with
that many copies of aws-baseline as the worker places them, read from a directory
at start-up (so setting up 400 versions does not take 2,000 PUTs). Then, ``--repeat``
times, one more version is PUT module by module (``PUT /v1/policies/{id}?metrics``)
and DELETEd again, while a client queries an already loaded version in a loop; the
longest of those queries shows how long OPA holds its readers while it installs
the new compiler. Forms:

- ``policies`` — the 4 policy modules of a version only;
- ``runner`` — plus the worker's runner module (``worker.opa_runtime``);
- ``static`` — plus a runner with one rule per policy slug and static references
  (``data.gavel.pv<id>.p0.violations``), instead of the dynamic ``[slug]`` reference.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import orjson

from bench.opa_server import OpaServer, opa_binary
from bench.packs import example_policies
from bench.processes import load_average
from bench.report import Report, percentile
from gavel.rego import policy_slug, runner_id
from worker.opa_runtime import PackVersion, runner_module, runner_package

FORMS = ("policies", "runner", "static")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--loaded", default="0,25,50,100,200",
                        help="pack versions OPA holds before each measurement (default "
                             "0,25,50,100,200)")
    parser.add_argument("--forms", default=",".join(FORMS),
                        help=f"module forms to compare (default {','.join(FORMS)})")
    parser.add_argument("--repeat", type=int, default=3,
                        help="versions added and removed per measurement (default 3)")


def static_runner(version_id: int, slugs: list[str]) -> str:
    rules = [f'results["{slug}"] := vs if {{\n'
             f'    "{slug}" in input.policies\n'
             f"    vs := data.gavel.pv{version_id}.{slug}.violations"
             f" with input.config as input.configs.{slug}\n}}\n" for slug in slugs]
    return (f"package {runner_package(version_id)}\n\n" + "\n".join(rules) +
            "\nbatch := [r | some item in input.batch; r := results with input as item]\n")


def version_modules(form: str, version_id: int) -> list[tuple[str, str]]:
    """(OPA policy id, text) of one pack version, runner last."""
    version = PackVersion.of(version_id, example_policies())
    modules = list(version.modules)
    slugs = [policy.slug for policy in version.policies]
    runner = {"runner": runner_module(version_id),
              "static": static_runner(version_id, slugs)}.get(form)
    if runner is not None:
        modules.append((runner_id(version_id), runner))
    return modules


@contextmanager
def private_opa(form: str, loaded: int) -> Iterator[tuple[str, float]]:
    """An OPA holding ``loaded`` pack versions; yields its URL and start-up seconds."""
    directory = Path(tempfile.mkdtemp(prefix="gavel-opa-modules-"))
    for version_id in range(1, loaded + 1):
        for module_id, text in version_modules(form, version_id):
            (directory / (module_id.replace("/", "_") + ".rego")).write_text(text)
    server = OpaServer("opa-modules", directory=directory)
    began = time.perf_counter()
    try:
        server.start()
        yield server.url, time.perf_counter() - began
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


async def _put(session: aiohttp.ClientSession, base: str, module_id: str, text: str
               ) -> tuple[float, float]:
    """(wall ms, OPA's compile ms) of one PUT."""
    began = time.perf_counter()
    async with session.put(f"{base}/v1/policies/{module_id}?metrics=true", data=text.encode(),
                           headers={"Content-Type": "text/plain"}) as resp:
        body = orjson.loads(await resp.read())
        if resp.status != 200:
            raise SystemExit(f"PUT {module_id}: OPA answered {resp.status}: {body}")
    wall = (time.perf_counter() - began) * 1000
    return wall, body.get("metrics", {}).get("timer_rego_module_compile_ns", 0) / 1e6


async def _delete(session: aiohttp.ClientSession, base: str, module_id: str) -> float:
    began = time.perf_counter()
    async with session.delete(f"{base}/v1/policies/{module_id}") as resp:
        await resp.read()
    return (time.perf_counter() - began) * 1000


async def _query_loop(session: aiohttp.ClientSession, base: str, form: str,
                      stop: asyncio.Event, latencies: list[float]) -> None:
    slugs = [policy_slug(i) for i in range(len(example_policies()))]
    path = "/v1/data/gavel/pv1/p0/violations" if form == "policies" else \
        "/v1/data/gavel/run/pv1/results"
    payload = orjson.dumps({"input": {"resources": [], "policies": slugs,
                                      "configs": {s: {} for s in slugs}, "config": {}}})
    while not stop.is_set():
        began = time.perf_counter()
        async with session.post(base + path, data=payload,
                                headers={"Content-Type": "application/json"}) as resp:
            await resp.read()
        latencies.append((time.perf_counter() - began) * 1000)
        await asyncio.sleep(0.005)


async def _measure(base: str, form: str, loaded: int, repeat: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"put": [], "compile": [], "delete": [], "load": [],
                                       "query": []}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        stop = asyncio.Event()
        querying = asyncio.create_task(_query_loop(session, base, form, stop,
                                                   figures["query"])) if loaded else None
        for n in range(repeat):
            modules = version_modules(form, loaded + 1 + n)
            began = time.perf_counter()
            for module_id, text in modules:
                wall, compile_ms = await _put(session, base, module_id, text)
                figures["put"].append(wall)
                figures["compile"].append(compile_ms)
            figures["load"].append((time.perf_counter() - began) * 1000)
            for module_id, _ in reversed(modules):
                figures["delete"].append(await _delete(session, base, module_id))
        stop.set()
        if querying is not None:
            await querying
    return figures


def _row(report: Report, form: str, loaded: int, startup: float, modules: int,
         figures: dict[str, list[float]]) -> None:
    label = f"{form}, {loaded} versions ({modules} modules)"
    report.add(f"{label}: start-up", startup * 1000, "ms")
    report.add(f"{label}: PUT median", percentile(figures["put"], 0.5), "ms")
    report.add(f"{label}: OPA compile per PUT", percentile(figures["compile"], 0.5), "ms")
    report.add(f"{label}: DELETE median", percentile(figures["delete"], 0.5), "ms")
    report.add(f"{label}: one version loaded", percentile(figures["load"], 0.5), "ms")
    if modules:
        report.add(f"{label}: PUT per module held", percentile(figures["put"], 0.5) / modules,
                   "ms")
    if figures["query"]:
        report.add(f"{label}: query meanwhile, median / max",
                   f"{percentile(figures['query'], 0.5):.1f} / {max(figures['query']):.0f}",
                   "ms")


async def run(args: argparse.Namespace) -> Report:
    forms = [f for f in args.forms.split(",") if f]
    unknown = set(forms) - set(FORMS)
    if unknown:
        raise SystemExit(f"unknown forms {sorted(unknown)}; choose from {FORMS}")
    counts = [int(c) for c in args.loaded.split(",") if c]
    report = Report("opa-modules", {"loaded": args.loaded, "forms": args.forms,
                                    "repeat": args.repeat, "cpus": os.cpu_count()})
    opa_binary()  # built before the first timing, if it is not there yet
    report.add("load average at start (1/5/15 min)", load_average())
    for loaded in counts:
        for form in forms:
            with private_opa(form, loaded) as (base, startup):
                figures = await _measure(base, form, loaded, args.repeat)
            modules = loaded * len(version_modules(form, 1))
            _row(report, form, loaded, startup, modules, figures)
    report.add("load average at end (1/5/15 min)", load_average())
    return report
