"""Readiness: one list of named checks, aggregated in one place."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Check = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    error: str = ""


async def run_checks(checks: dict[str, Check], timeout: float = 3.0) -> list[CheckResult]:
    async def one(name: str, check: Check) -> CheckResult:
        try:
            await asyncio.wait_for(check(), timeout)
        except Exception as exc:  # any failure means "not ready", with its reason
            return CheckResult(name, False, f"{type(exc).__name__}: {exc}".strip(": "))
        return CheckResult(name, True)

    return list(await asyncio.gather(*(one(n, c) for n, c in checks.items())))
