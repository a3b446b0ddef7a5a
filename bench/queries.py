"""queries: result queries (violations, evaluation history, compliance) on 1M violations.

Two orgs are seeded with COPY. ``history``: E entities (default 100,000; a fifth of
them accounts) with H evaluations each (default 5) and 0-4 violations per
evaluation, 1,000,000 violation rows of which the latest evaluations' 200,000 are
current. ``current``: E entities with one evaluation of 10 violations each, so all
1,000,000 are current. Each day's evaluations are stored in the order of their
entities, so that the ids rise with the time as the worker writes them (but for
overlapping transactions; ``--unordered-times``: at random). Then each org's
evaluations are counted (``gavel.evaluation_counts.recount``; the trigger that counts
them as they commit is disabled while seeding) and its compliance summary is rebuilt
from its current state (``gavel.compliance_summary.rebuild``), as the trigger and the
worker would have kept them. Every query
shape runs through the same code as the API (page and count on two connections)
``--runs`` times after a warm-up; ``--only`` keeps the shapes of one kind.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import asyncpg

from bench.report import Report, percentile
from bench.scratch import scratch
from gavel import (
    compliance,
    compliance_summary,
    entity_blocks,
    evaluation_counts,
    result_pages,
    result_queries,
)
from gavel.db import pool_context
from gavel.migrations import MIGRATIONS_DIR
from gavel.orgs import create_org

PACKS = [f"pack-{n:02d}" for n in range(20)]
BASE = datetime(2025, 1, 1, tzinfo=UTC)
AUDIT = uuid.UUID(int=1)
BATCH = 5_000  # entities per COPY round
_EVALUATION_COLUMNS = ("id", "org_id", "event_id", "entity_type", "entity_key", "kind",
                       "status", "outcome", "blocking", "resource_count", "audit_id",
                       "packs", "opa_version", "occurred_at", "received_at", "finished_at")
_VIOLATION_COLUMNS = ("id", "evaluation_id", "org_id", "entity_type", "entity_key", "groups",
                      "pack", "pack_version", "version_tag", "policy", "level", "urn",
                      "message", "details", "observed_at")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=5, help="evaluations per entity")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per query shape")
    parser.add_argument("--only", metavar="PREFIX", default="",
                        help="time only the query shapes whose label starts with PREFIX "
                             "(e.g. compliance)")
    parser.add_argument("--unordered-times", action="store_true",
                        help="observed times at random in each day rather than rising "
                             "with the ids as the worker stores them")
    parser.add_argument("--without-indexes", action="store_true",
                        help="drop the indexes that 0004_result_queries.sql, "
                             "0007_list_paging.sql and 0010_pack_led_sorts.sql add, after "
                             "seeding")


@dataclass(frozen=True)
class Entity:
    index: int

    @property
    def type(self) -> str:
        return "account" if self.index % 5 == 0 else "stack"

    @property
    def key(self) -> str:
        i = self.index
        return f"account-{i:06d}" if i % 5 == 0 else f"proj-{i % 500:03d}/stack-{i:06d}"

    @property
    def groups(self) -> list[str]:
        # one team group each (2% of entities), a third also in "shared"
        return [f"group-{self.index % 50:02d}", *(["shared"] if self.index % 3 == 0 else [])]

    @property
    def packs(self) -> list[tuple[str, int]]:
        return [(PACKS[(self.index + 7 * k) % 20], 1 + (self.index + k) % 2) for k in range(3)]


@dataclass
class Rows:
    next_id: int = 1
    evaluations: list[tuple[Any, ...]] = field(default_factory=list)
    violations: list[tuple[Any, ...]] = field(default_factory=list)
    current: list[tuple[Any, ...]] = field(default_factory=list)
    latest: list[tuple[Any, ...]] = field(default_factory=list)

    def clear(self) -> None:
        for rows in (self.evaluations, self.violations, self.current, self.latest):
            rows.clear()


def _violation(rows: Rows, entity: Entity, evaluation_id: uuid.UUID, org_id: int, n: int,
               at: datetime) -> tuple[Any, ...]:
    pack, version = entity.packs[n % 3]
    level = "mandatory" if (entity.index * 7 + n) % 10 < 3 else "advisory"
    row = (rows.next_id, evaluation_id, org_id, entity.type, entity.key, entity.groups, pack,
           version, f"{version}.0.0", f"{pack}-rule-{(entity.index + n) % 5}", level,
           f"urn:pulumi:{entity.key}::aws:s3/bucket:Bucket::b{n}",
           f"bucket b{n} of {entity.key} breaks the rule", None, at)
    rows.next_id += 1
    return row


def observed(step: int, entity: int, entities: int, rng: random.Random,
             unordered: bool) -> datetime:
    """When an entity's evaluation of a step (a day) was stored. The worker stores the
    evaluations of a day as they come, so the ids of their violations rise with the time,
    but for transactions that overlap (a second or two here); ``unordered``: at random in
    the day, as violations written otherwise would be."""
    day = BASE + timedelta(days=step)
    if unordered:
        return day + timedelta(seconds=rng.randrange(86_400))
    return day + timedelta(seconds=entity * 86_400 / entities + rng.uniform(-2, 2))


def _evaluate(rows: Rows, entity: Entity, org_id: int, step: int, count: int,
              current: bool, rng: random.Random, at: datetime) -> None:
    evaluation_id = uuid.UUID(int=rng.getrandbits(128))
    found = [_violation(rows, entity, evaluation_id, org_id, n, at) for n in range(count)]
    levels = {v[10] for v in found}
    outcome = "mandatory" if "mandatory" in levels else "advisory" if levels else "pass"
    kind = "scan" if entity.type == "account" else ("preview", "update", "refresh")[step % 3]
    audit = AUDIT if current and entity.index % 100 == 1 else None
    packs = [{"name": p, "version": v, "versionTag": f"{v}.0.0",
              "groups": [{"name": g, "mode": "audit"} for g in entity.groups],
              "opaVersion": "1.0.0", "decisionId": None, "durationMs": 1.0, "status": "ok",
              "error": None, "violations": sum(1 for r in found if r[6] == p)}
             for p, v in entity.packs]
    rows.evaluations.append((
        evaluation_id, org_id, str(evaluation_id), entity.type, entity.key, kind, "finished",
        outcome, outcome == "mandatory" and kind in ("preview", "update"), 10, audit, packs,
        "1.0.0", at, at, at + timedelta(seconds=1)))
    rows.violations += found
    if current:
        rows.current += found
        rows.latest.append((org_id, entity.type, entity.key, evaluation_id, at,
                            at + timedelta(seconds=1)))


async def _copy(conn: asyncpg.Connection, rows: Rows) -> None:
    await conn.copy_records_to_table("evaluations", records=rows.evaluations,
                                     columns=_EVALUATION_COLUMNS)
    await conn.copy_records_to_table("violations", records=rows.violations,
                                     columns=_VIOLATION_COLUMNS)
    await conn.copy_records_to_table("current_violations", records=rows.current,
                                     columns=("violation_id", *_VIOLATION_COLUMNS[1:]))
    await conn.copy_records_to_table("latest_evaluations", records=rows.latest, columns=(
        "org_id", "entity_type", "entity_key", "evaluation_id", "occurred_at", "finished_at"))
    rows.clear()


@dataclass(frozen=True)
class Layout:
    org_id: int
    history: int  # evaluations per entity
    per_evaluation: Callable[[int, int], int]  # violations of (entity, step)


async def seed(pool: asyncpg.Pool, layouts: list[Layout], entities: int, rows: Rows,
               unordered: bool = False) -> None:
    """A batch of entities of each org in turn: their ids interleave, as when several
    orgs are active at once. Times: ``observed``."""
    rngs = {layout.org_id: random.Random(layout.org_id) for layout in layouts}
    async with pool.acquire() as conn:
        for start in range(0, entities, BATCH):
            for layout in layouts:
                for i in range(start, min(entities, start + BATCH)):
                    for step in range(layout.history):
                        rng = rngs[layout.org_id]
                        _evaluate(rows, Entity(i), layout.org_id, step,
                                  layout.per_evaluation(i, step), step == layout.history - 1,
                                  rng, observed(step, i, entities, rng, unordered))
                await _copy(conn, rows)


class Shape(Protocol):
    label: str

    async def prepare(self, pool: asyncpg.Pool) -> None: ...

    async def run(self, pool: asyncpg.Pool) -> Any: ...

    def explain(self) -> tuple[str, tuple[Any, ...]] | None: ...


@dataclass
class Paged:
    """A page of a list as the API reads it (the page and its capped count): by number
    (OFFSET), or continuing by sort key as a ``next`` (``after``) or ``prev``
    (``before``) link does, from the row its token was made of, or as the ``last`` link
    does, backwards from the end (``end``)."""

    label: str
    query: result_queries.PagedQuery
    offset: int = 0
    size: int = 100
    via: str = "number"
    seek: result_queries.Seek | None = None
    listed: list[str] | None = None  # the packs a pack-led sort branches on
    # by number, this deep into the rows that match (counted when prepared)
    matching_depth: float | None = None

    async def prepare(self, pool: asyncpg.Pool) -> None:
        if self.matching_depth is not None:
            matching = await pool.fetchval(self.query.count_sql, *self.query.params,
                                           10 ** 9)
            self.offset = int(matching * self.matching_depth) // self.size * self.size
        if self.via == "end":
            self.seek = result_queries.Seek.end()
        elif self.via != "number":
            at = self.offset - 1 if self.via == "after" else self.offset + self.size
            sql, params = self.query.page(1, at)
            [row] = await pool.fetch(sql, *params)
            key = self.query.order.decode_key(self.query.order.key_of(row))
            self.seek = result_queries.Seek(key, before=self.via == "before")
        self.listed = await result_pages.listed_values(pool, self.query, self.offset,
                                                         self.seek)

    async def run(self, pool: asyncpg.Pool) -> Any:
        return await result_pages.fetch_page(pool, self.query, self.offset, self.size,
                                               self.seek)

    def explain(self) -> tuple[str, tuple[Any, ...]] | None:
        return self.query.page(self.size + 1, 0 if self.seek else self.offset, self.seek,
                               self.listed)


@dataclass
class Compliance:
    label: str
    org_id: int
    filters: dict[str, Any]

    async def prepare(self, pool: asyncpg.Pool) -> None:
        return None

    async def run(self, pool: asyncpg.Pool) -> Any:
        return await compliance.compliance(pool, self.org_id, self.filters, 0, 100)

    def explain(self) -> tuple[str, tuple[Any, ...]] | None:
        return None


def _sort(text: str) -> tuple[tuple[str, bool], ...]:
    return tuple((key.lstrip("-"), key.startswith("-")) for key in text.split(",") if key)


LEVEL_LED_SORTS = ("-level,observedAt", "level,-observedAt", "level,observedAt", "-level,pack",
                   "level,-policy", "-level,entity")
OTHER_TWO_KEY_SORTS = ("pack,policy", "-pack,observedAt", "policy,-level", "entity,-observedAt",
                       "-observedAt,pack")


def violation_shapes(org_id: int, total: int) -> Iterator[Shape]:
    def v(label: str, filters: dict[str, Any], sort: str = "", depth: float = 0.0,
          size: int = 100, via: str = "number", matching_depth: float | None = None) -> Paged:
        offset = (int(total * depth) // size * size if via == "number"
                  else (total - 1) // size * size if via == "end" else int(total * depth))
        return Paged(f"violations: {label}", result_queries.violation_query(
            org_id, filters, _sort(sort)), offset, size, via, matching_depth=matching_depth)

    yield v("first page (100)", {})
    yield v("first page (1000)", {}, size=1000)
    # by number, a page is read from the nearer end of the list: half way is the deepest
    for depth in (0.5, 0.9):
        yield v(f"deep page ({depth:.0%})", {}, depth=depth)
    yield v("last page", {}, depth=(total - 1) / total)
    for depth in (0.1, 0.5, 0.9):
        yield v(f"next link at {depth:.0%}", {}, depth=depth, via="after")
    yield v("prev link at 90%", {}, depth=0.9, via="before")
    for sort in ("", "-level,observedAt", "pack", "pack,policy"):
        yield v(f"last link{f', sort {sort}' if sort else ''}", {}, sort, via="end")
    for name, value in (("level", "mandatory"), ("pack", "pack-03"),
                        ("policy", "pack-03-rule-2"), ("entity", "proj-001/stack-000001"),
                        ("entityType", "account"), ("group", "shared"),
                        ("group", "group-07"), ("urn", "urn:pulumi:account-000005::aws:s3/"
                                                       "bucket:Bucket::b1")):
        yield v(f"filter {name}={value}", {name: value})
    for key in ("level", "pack", "policy", "entity", "observedAt"):
        for sort in (key, f"-{key}"):
            yield v(f"sort {sort}", {}, sort)
            yield v(f"sort {sort}, next link at 90%", {}, sort, depth=0.9, via="after")
    for sort in LEVEL_LED_SORTS + OTHER_TWO_KEY_SORTS:
        yield v(f"sort {sort}", {}, sort)
        yield v(f"sort {sort}, next link at 90%", {}, sort, depth=0.9, via="after")
    for depth in (0.5, 0.9):
        yield v(f"sort -level,observedAt, deep page ({depth:.0%})", {}, "-level,observedAt",
                depth=depth)
    yield v("sort -level,observedAt, prev link at 90%", {}, "-level,observedAt", depth=0.9,
            via="before")
    yield v("filter level + sort -observedAt", {"level": "mandatory"}, "-observedAt")
    # half way by number: the deepest a page by number is read (from the nearer end)
    for sort in ("-level", "level", "observedAt", "-observedAt", "level,-observedAt", "-entity",
                 "entity", "-level,entity", "policy", "entity,-observedAt"):
        yield v(f"sort {sort}, deep page (50%)", {}, sort, depth=0.5)
    yield v("sort observedAt, deep page (90%)", {}, "observedAt", depth=0.9)
    yield v("sort entity,-observedAt, deep page (90%)", {}, "entity,-observedAt", depth=0.9)
    yield v("filter group=shared + sort -entity, deep page (50%)", {"group": "shared"},
            "-entity", matching_depth=0.5)
    yield v("filter group=shared + sort observedAt, deep page (50%)", {"group": "shared"},
            "observedAt", matching_depth=0.5)
    yield v("filter level=advisory, deep page (50%)", {"level": "advisory"},
            matching_depth=0.5)
    for depth in (0.5, 0.9):
        yield v(f"sort pack, deep page ({depth:.0%})", {}, "pack", depth=depth)
        yield v(f"filter group=shared, deep page ({depth:.0%})", {"group": "shared"},
                matching_depth=depth)


def _shown(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() \
            else value.isoformat(timespec="minutes").removesuffix("+00:00")
    return value


def evaluation_shapes(org_id: int, total: int, not_blocking: int) -> Iterator[Shape]:
    def e(label: str, filters: dict[str, Any], depth: float = 0.0, via: str = "number",
          size: int = 100, matching_depth: float | None = None) -> Paged:
        matching = not_blocking if filters.get("blocking") is False else total
        offset = (int(matching * depth) // size * size if via == "number"
                  else (matching - 1) // size * size if via == "end"
                  else int(matching * depth))
        return Paged(f"evaluations: {label}", result_queries.evaluation_query(org_id, filters),
                     offset, size, via, matching_depth=matching_depth)

    yield e("first page (100)", {})
    for depth in (0.5, 0.9):
        yield e(f"deep page ({depth:.0%})", {}, depth=depth)
    yield e("last link", {}, via="end")
    for depth in (0.1, 0.5, 0.9):
        yield e(f"next link at {depth:.0%}", {}, depth=depth, via="after")
    for name, value in (("entity", "proj-001/stack-000001"), ("entityType", "account"),
                        ("kind", "update"), ("outcome", "pass"), ("blocking", True),
                        ("blocking", False), ("since", BASE + timedelta(days=4)),
                        ("until", BASE + timedelta(days=1)), ("audit", AUDIT)):
        yield e(f"filter {name}={_shown(value)}", {name: value})
    yield e("filter blocking=False, next link at 90%", {"blocking": False}, depth=0.9,
            via="after")
    # deep by number with the filters the counts by hour are kept by, and one they are not
    windows: list[dict[str, Any]] = [
        {"since": BASE + timedelta(days=1)},
        {"since": BASE + timedelta(hours=12, minutes=7),
         "until": BASE + timedelta(days=4, hours=6, minutes=31), "kind": "update"}]
    for filters in ({"kind": "update"}, {"entityType": "account"},
                    {"entityType": "stack", "kind": "refresh"}, *windows, {"outcome": "pass"}):
        shown = ", ".join(f"{k}={_shown(v)}" for k, v in filters.items())
        for depth in (0.5, 0.9):
            yield e(f"filter {shown}, deep page ({depth:.0%})", filters, matching_depth=depth)


def compliance_shapes(org_id: int) -> Iterator[Shape]:
    for filters in ({}, {"entityType": "account"}, {"group": "group-07"}, {"group": "shared"},
                    {"pack": "pack-03"}, {"group": "shared", "pack": "pack-03"}):
        shown = ", ".join(f"{k}={v}" for k, v in filters.items())
        yield Compliance(f"compliance: filter {shown}" if filters else "compliance", org_id,
                         filters)


async def _time(pool: asyncpg.Pool, shape: Shape, runs: int) -> list[float]:
    await shape.prepare(pool)
    for _ in range(3):
        await shape.run(pool)
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        await shape.run(pool)
        times.append((time.perf_counter() - began) * 1000)
    return times


async def _explain(pool: asyncpg.Pool, shape: Shape) -> str:
    statement = shape.explain()
    if statement is None:
        return "(no single statement)"
    sql, params = statement
    rows = await pool.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *params)
    return "\n".join(r[0] for r in rows)


RESULT_INDEX_MIGRATIONS = ("0004_result_queries.sql", "0007_list_paging.sql",
                           "0010_pack_led_sorts.sql")


async def _drop_result_indexes(pool: asyncpg.Pool) -> None:
    """Drop the indexes the result-query migrations add; one they re-create in another
    form (``DROP INDEX`` first) stays, as it was there before."""
    lines = [line for name in RESULT_INDEX_MIGRATIONS
             for line in (MIGRATIONS_DIR / name).read_text().splitlines()]
    kept = {line.split()[2].rstrip(";") for line in lines if line.startswith("DROP INDEX")}
    for line in lines:
        if line.startswith("CREATE INDEX") and line.split()[2] not in kept:
            await pool.execute(f"DROP INDEX {line.split()[2]}")


# the indexes whose write cost is measured, dropped in this order
INDEX_SETS = (("the 2 pack-led indexes of 0010",
               ("current_violations_pack_policy", "current_violations_pack_observed")),
              ("the 4 level-led indexes of 0007",
               ("current_violations_level_observed", "current_violations_level_pack",
                "current_violations_level_policy", "current_violations_level_entity")))
REWRITTEN_ENTITIES = 2000
_REWRITE = """
WITH cleared AS (DELETE FROM current_violations
                 WHERE org_id = $1 AND entity_type = $2 AND entity_key = $3 RETURNING *)
INSERT INTO current_violations SELECT * FROM cleared"""


async def _rewrite_ms(pool: asyncpg.Pool, entities: list[asyncpg.Record]) -> list[float]:
    """ms per entity to replace its current violations (delete and insert them, one
    transaction each), the write every evaluation makes."""
    times = []
    async with pool.acquire() as conn:
        for entity in entities:
            began = time.perf_counter()
            await conn.execute(_REWRITE, *entity)
            times.append((time.perf_counter() - began) * 1000)
    return times


async def _rewrite_cost(pool: asyncpg.Pool, report: Report, org_id: int) -> None:
    """The write cost of the sort indexes: entities' current violations replaced with
    every index, then again without each set of INDEX_SETS in turn (dropped for it, at
    the end)."""
    entities = await pool.fetch(
        "SELECT org_id, entity_type, entity_key FROM latest_evaluations WHERE org_id = $1 "
        "ORDER BY entity_key LIMIT $2", org_id, REWRITTEN_ENTITIES + 200)
    warm, timed = entities[:200], entities[200:]
    label = "every index"
    for dropped, names in (*INDEX_SETS, ("", ())):
        await _rewrite_ms(pool, warm)
        times = await _rewrite_ms(pool, timed)
        report.add(f"current rewrite of an entity's 10 violations, {label}",
                   f"{percentile(times, 0.5):.2f} / {percentile(times, 0.99):.2f}",
                   "ms median / p99")
        for name in names:
            await pool.execute(f"DROP INDEX IF EXISTS {name}")
        label = f"without {dropped}" if label == "every index" else f"{label} and {dropped}"


async def run(args: argparse.Namespace) -> Report:
    report = Report("queries", {"entities": args.entities, "history": args.history,
                                "runs": args.runs, "without_indexes": args.without_indexes,
                                "unordered_times": args.unordered_times})
    async with scratch() as (settings, _env), pool_context(settings.database) as pool:
        history_org, _ = await create_org(pool, "history")
        current_org, _ = await create_org(pool, "current")
        rows = Rows()
        began = time.perf_counter()
        # counted afterwards: the trigger counting as each COPY commits costs about
        # 0.4 ms per row in transactions this big
        await pool.execute("ALTER TABLE evaluations DISABLE TRIGGER evaluations_counted")
        await seed(pool, [Layout(history_org, args.history, lambda i, step: (i + step) % 5),
                          Layout(current_org, 1, lambda i, step: 10)], args.entities, rows,
                   args.unordered_times)
        await pool.execute("ALTER TABLE evaluations ENABLE TRIGGER evaluations_counted")
        report.add("seed (COPY)", time.perf_counter() - began, "s")
        began = time.perf_counter()
        async with pool.acquire() as conn:
            for org_id in (history_org, current_org):
                await evaluation_counts.recount(conn, org_id)
        report.add("evaluation counts of both orgs (recount)", time.perf_counter() - began,
                   "s")
        began = time.perf_counter()
        async with pool.acquire() as conn:
            for org_id in (history_org, current_org):
                await compliance_summary.rebuild(conn, org_id, entity_blocks.PLACED_ROWS)
        report.add("compliance summary of both orgs (rebuild)", time.perf_counter() - began,
                   "s")
        if args.without_indexes:
            await _drop_result_indexes(pool)
        began = time.perf_counter()
        await pool.execute("VACUUM ANALYZE")
        report.add("vacuum analyze", time.perf_counter() - began, "s")
        for table in ("violations", "current_violations", "evaluations"):
            report.add(f"rows: {table}", int(await pool.fetchval(
                f"SELECT count(*) FROM {table}")))
        slowest: tuple[float, str, Shape] | None = None
        for org, org_id in (("history", history_org), ("current", current_org)):
            current = int(await pool.fetchval(
                "SELECT count(*) FROM current_violations WHERE org_id = $1", org_id))
            evaluations = int(await pool.fetchval(
                "SELECT count(*) FROM evaluations WHERE org_id = $1", org_id))
            not_blocking = int(await pool.fetchval(
                "SELECT count(*) FROM evaluations WHERE org_id = $1 AND NOT blocking", org_id))
            shapes = [*violation_shapes(org_id, current),
                      *evaluation_shapes(org_id, evaluations, not_blocking),
                      *compliance_shapes(org_id)]
            for shape in (s for s in shapes if s.label.startswith(args.only)):
                times = await _time(pool, shape, args.runs)
                median, p99 = percentile(times, 0.5), percentile(times, 0.99)
                report.add(f"{org} {shape.label}", f"{median:.1f} / {p99:.1f}",
                           "ms median / p99")
                if shape.explain() is not None and (slowest is None or median > slowest[0]):
                    slowest = (median, f"{org} {shape.label}", shape)
        if slowest is not None:
            print(f"\nslowest paged query: {slowest[1]} ({slowest[0]:.1f} ms median)")
            print(await _explain(pool, slowest[2]))
        if not args.without_indexes:
            await _rewrite_cost(pool, report, current_org)
    return report
