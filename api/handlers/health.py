"""Liveness and readiness."""

from __future__ import annotations

from aiohttp import web
from aiokafka.admin import AIOKafkaAdminClient

from api.json import json_response
from api.keys import OPA, OPA_CHECK, POOL, SETTINGS
from gavel.health import run_checks


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    app = request.app

    async def postgres() -> None:
        await app[POOL].fetchval("SELECT 1")

    async def kafka() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=app[SETTINGS].kafka.bootstrap_servers,
                                    request_timeout_ms=2500)
        try:
            await admin.start()
            await admin.list_topics()
        finally:
            await admin.close()

    async def opa() -> None:
        if not await app[OPA].check_health():
            raise ConnectionError(f"OPA at {app[SETTINGS].opa.url} is not healthy")

    async def opa_check() -> None:
        if not await app[OPA_CHECK].check_health():
            raise ConnectionError(f"OPA at {app[SETTINGS].opa.check_url} is not healthy")

    checks = {"postgres": postgres, "kafka": kafka, "opa": opa}
    if app[OPA_CHECK] is not app[OPA]:
        checks["opa-check"] = opa_check
    results = await run_checks(checks)
    failed = [r for r in results if not r.ok]
    body = {"status": "failed" if failed else "ok",
            "checks": {r.name: ({"ok": True} if r.ok else {"ok": False, "error": r.error})
                       for r in results}}
    if failed:
        body["message"] = "not ready: " + ", ".join(f"{r.name} ({r.error})" for r in failed)
    return json_response(body, status=503 if failed else 200)
