"""The ``gavel`` command: api, worker, up (all-in-one), migrate, org create."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable

from gavel.settings import Settings, SettingsError, load_settings
from gavel.tokens import ROLES

log = logging.getLogger("gavel")

# Objects allocated, less those freed, before Python looks for reference cycles (its
# default is 700). A worker holds a batch of events, their OPA answers and their rows at
# a time, so at 700 it collected a few hundred times a second and spent about a fifth
# of its CPU there (`python -m bench pipeline`); the services make few cycles, and
# refcounting frees the rest as before.
GC_THRESHOLD = 20_000


def _install_stop(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def _migrate(settings: Settings) -> list[int]:
    import asyncpg

    from gavel.migrations import migrate

    conn = await asyncpg.connect(settings.database.url)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


async def _serve_api(settings: Settings, stop: asyncio.Event) -> None:
    from aiohttp import web

    from api.app import create_app

    runner = web.AppRunner(create_app(settings), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.http.host, settings.http.port)
    await site.start()
    log.info("API listening on http://%s:%d", settings.http.host, settings.http.port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


async def _worker(settings: Settings, stop: asyncio.Event) -> None:
    from worker.service import run_worker

    await run_worker(settings, stop)


async def _run_until_stopped(settings: Settings,
                             *parts: Callable[[Settings, asyncio.Event], Awaitable[None]]) -> None:
    tune_gc()
    stop = asyncio.Event()
    _install_stop(stop)
    tasks = [asyncio.create_task(part(settings, stop)) for part in parts]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        stop.set()
        for task in tasks:
            if not task.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def tune_gc() -> None:
    """Collect cycles less often, and never look again at what start-up allocated."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])


async def cmd_api(settings: Settings, _args: argparse.Namespace) -> int:
    await _run_until_stopped(settings, _serve_api)
    return 0


async def cmd_worker(settings: Settings, _args: argparse.Namespace) -> int:
    await _run_until_stopped(settings, _worker)
    return 0


async def cmd_up(settings: Settings, _args: argparse.Namespace) -> int:
    from gavel.kafka import ensure_topics

    applied = await _migrate(settings)
    log.info("migrations applied: %s", applied or "none pending")
    await ensure_topics(settings.kafka)
    await _run_until_stopped(settings, _serve_api, _worker)
    return 0


async def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    applied = await _migrate(settings)
    print("applied: " + (", ".join(f"{v:04d}" for v in applied) if applied else "nothing pending"))
    return 0


async def cmd_org_create(settings: Settings, args: argparse.Namespace) -> int:
    from gavel.db import pool_context
    from gavel.orgs import InvalidOrgName, OrgExists, create_org

    await _migrate(settings)
    async with pool_context(settings.database) as pool:
        try:
            _, token = await create_org(pool, args.name)
        except (OrgExists, InvalidOrgName) as exc:
            print(f"gavel: {exc}", file=sys.stderr)
            return 1
    print(f"Created organization {args.name!r} with its default policy groups.")
    print("Its first admin token (shown once):")
    print(token)
    return 0


async def cmd_org_token(settings: Settings, args: argparse.Namespace) -> int:
    from gavel.db import pool_context
    from gavel.orgs import UnknownOrg, issue_org_token

    await _migrate(settings)
    async with pool_context(settings.database) as pool:
        try:
            token = await issue_org_token(pool, args.name, args.role, args.description)
        except UnknownOrg as exc:
            print(f"gavel: {exc}", file=sys.stderr)
            return 1
    print(f"A new {args.role} token of organization {args.name!r} (shown once):")
    print(token)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gavel", description="Gavel policy-as-code service")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("api", help="run the HTTP API and the outbox relay").set_defaults(run=cmd_api)
    sub.add_parser("worker", help="run the evaluation worker").set_defaults(run=cmd_worker)
    sub.add_parser("up", help="all-in-one: migrate, then API, relay and worker in one process"
                   ).set_defaults(run=cmd_up)
    sub.add_parser("migrate", help="apply pending schema migrations").set_defaults(run=cmd_migrate)
    org = sub.add_parser("org", help="manage organizations").add_subparsers(dest="org_command",
                                                                            required=True)
    create = org.add_parser("create", help="create an organization and print an admin token")
    create.add_argument("name")
    create.set_defaults(run=cmd_org_create)
    token = org.add_parser("token", help="print a new token of an existing organization")
    token.add_argument("name")
    token.add_argument("--role", choices=ROLES, default="admin")
    token.add_argument("--description", default="issued with gavel org token")
    token.set_defaults(run=cmd_org_token)
    return parser


def _run(coro: Awaitable[int]) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"gavel: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.getLevelName(
        settings.log_level)))
    return _run(args.run(settings, args))


if __name__ == "__main__":
    sys.exit(main())
