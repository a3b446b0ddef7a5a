"""Outcome and blocking of one evaluation (DESIGN.md, Enforcement): pure logic."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from worker.index import GroupRef

BLOCKING_KINDS = frozenset({"preview", "update"})


@dataclass(frozen=True, slots=True)
class PackVerdict:
    """What one evaluated pack contributes: its groups, levels seen, and whether it failed."""

    groups: tuple[GroupRef, ...]
    levels: frozenset[str]
    failed: bool


def outcome_of(verdicts: Iterable[PackVerdict]) -> str:
    verdicts = list(verdicts)
    if any(v.failed for v in verdicts):
        return "error"
    levels = set().union(*(v.levels for v in verdicts)) if verdicts else set()
    if "mandatory" in levels:
        return "mandatory"
    if "advisory" in levels:
        return "advisory"
    return "pass"


def is_blocking(verdicts: Iterable[PackVerdict], kind: str, fail_open: bool) -> bool:
    """A mandatory violation, or a failed pack unless fail-open, from a preventative
    group on a preview or update blocks. Audit groups never block."""
    if kind not in BLOCKING_KINDS:
        return False
    for verdict in verdicts:
        if not any(g.mode == "preventative" for g in verdict.groups):
            continue
        if "mandatory" in verdict.levels or (verdict.failed and not fail_open):
            return True
    return False
