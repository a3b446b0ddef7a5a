"""Finished evaluations and the current state written straight to Postgres (COPY), for
tests of the result queries that need thousands of violations."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from gavel import compliance_summary

EVALUATION_COLUMNS = ("id", "org_id", "event_id", "entity_type", "entity_key", "kind",
                      "status", "outcome", "blocking", "resource_count", "audit_id", "packs",
                      "opa_version", "occurred_at", "received_at", "finished_at")
VIOLATION_COLUMNS = ("id", "evaluation_id", "org_id", "entity_type", "entity_key", "groups",
                     "pack", "pack_version", "version_tag", "policy", "level", "urn",
                     "message", "details", "observed_at")
CURRENT_COLUMNS = ("violation_id", *VIOLATION_COLUMNS[1:])
BASE_TIME = datetime(2025, 6, 1, tzinfo=UTC)


@dataclass
class Violation:
    pack: str
    policy: str
    level: str
    groups: list[str]
    urn: str | None = None
    version: int = 1
    message: str = "violated"
    details: Any = None

    @property
    def version_tag(self) -> str:
        return f"{self.version}.0.0"


@dataclass
class Evaluation:
    entity_type: str
    entity_key: str
    at: datetime
    violations: list[Violation] = field(default_factory=list)
    # (pack, version, groups, errored) that ran; by default those of the violations
    packs: list[tuple[str, int, list[str], bool]] | None = None
    kind: str = "update"
    audit_id: uuid.UUID | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def outcome(self) -> str:
        if any(errored for *_, errored in self.pack_runs()):
            return "error"
        levels = {v.level for v in self.violations}
        return "mandatory" if "mandatory" in levels else "advisory" if levels else "pass"

    def pack_runs(self) -> list[tuple[str, int, list[str], bool]]:
        if self.packs is not None:
            return self.packs
        runs: dict[tuple[str, int], list[str]] = {}
        for v in self.violations:
            runs.setdefault((v.pack, v.version), v.groups)
        return [(pack, version, groups, False) for (pack, version), groups in runs.items()]

    def provenance(self) -> list[dict[str, Any]]:
        return [{"name": pack, "version": version, "versionTag": f"{version}.0.0",
                 "groups": [{"name": g, "mode": "preventative"} for g in groups],
                 "opaVersion": "test", "decisionId": None, "durationMs": 1.0,
                 "status": "error" if errored else "ok",
                 "error": "failed" if errored else None,
                 "violations": sum(1 for v in self.violations
                                   if (v.pack, v.version, v.groups) == (pack, version, groups))}
                for pack, version, groups, errored in self.pack_runs()]


@dataclass(frozen=True)
class Current:
    """A violation of the current state, with the id it was stored under."""

    id: int
    evaluation: Evaluation
    violation: Violation


async def seed(pool: asyncpg.Pool, org_id: int, evaluations: list[Evaluation],
               summary: bool = True, block_rows: int | None = None) -> list[Current]:
    """Store the evaluations; each entity's latest (by time) becomes its current state,
    summarized for compliance as the worker does (unless ``summary`` is false: a
    database from before the summary existed), its entities cut into blocks of about
    ``block_rows`` violations if given (else the org's blocks are kept)."""
    latest: dict[tuple[str, str], Evaluation] = {}
    for e in evaluations:
        key = (e.entity_type, e.entity_key)
        if key not in latest or latest[key].at < e.at:
            latest[key] = e
    async with pool.acquire() as conn, conn.transaction():
        total = sum(len(e.violations) for e in evaluations)
        # ids from the sequence, so that the rows can be copied with them
        ids = iter(await conn.fetchval(
            "SELECT array_agg(nextval('violations_id_seq')) FROM generate_series(1, $1)",
            total) or [])
        evaluation_rows, violation_rows, current_rows, current = [], [], [], []
        for e in evaluations:
            finished = e.at + timedelta(seconds=1)
            evaluation_rows.append((
                e.id, org_id, str(e.id), e.entity_type, e.entity_key, e.kind, "finished",
                e.outcome, e.outcome == "mandatory" and e.kind in ("preview", "update"), 1,
                e.audit_id, e.provenance(), "test", e.at, e.at, finished))
            is_current = latest[(e.entity_type, e.entity_key)] is e
            for v in e.violations:
                violation_id = next(ids)
                row = (violation_id, e.id, org_id, e.entity_type, e.entity_key, v.groups, v.pack,
                       v.version, v.version_tag, v.policy, v.level, v.urn, v.message,
                       v.details, finished)
                violation_rows.append(row)
                if is_current:
                    current_rows.append(row)
                    current.append(Current(violation_id, e, v))
        await conn.copy_records_to_table("evaluations", records=evaluation_rows,
                                         columns=EVALUATION_COLUMNS)
        await conn.copy_records_to_table("violations", records=violation_rows,
                                         columns=VIOLATION_COLUMNS)
        await conn.copy_records_to_table("current_violations", records=current_rows,
                                         columns=CURRENT_COLUMNS)
        await conn.copy_records_to_table(
            "latest_evaluations",
            records=[(org_id, e.entity_type, e.entity_key, e.id, e.at, e.at + timedelta(
                seconds=1)) for e in latest.values()],
            columns=("org_id", "entity_type", "entity_key", "evaluation_id", "occurred_at",
                     "finished_at"))
        if summary:
            await compliance_summary.rebuild(conn, org_id, block_rows)
    return current
