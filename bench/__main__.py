"""Dispatch ``python -m bench <name>`` to the benchmark module of that name."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bench import (
    api_load,
    audit,
    latency,
    opa_modules,
    pack_scale,
    pipeline,
    queries,
    resolution,
    store,
)
from bench.report import Report

BENCHMARKS = {"pipeline": pipeline, "resolution": resolution, "latency": latency,
              "packs": pack_scale, "api": api_load, "audit": audit, "queries": queries,
              "store": store, "opa-modules": opa_modules}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    names = parser.add_subparsers(dest="name", required=True)
    for name, module in BENCHMARKS.items():
        sub = names.add_parser(name, help=module.__doc__.splitlines()[0])
        sub.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
        module.add_arguments(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    report: Report = asyncio.run(BENCHMARKS[args.name].run(args))
    report.print()
    if args.json:
        report.write_json(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
