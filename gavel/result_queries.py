"""Paged queries over results: the evaluation history and the current violations.

Filters and sort keys map onto whitelisted SQL fragments; every value a caller
gives is a bound parameter. A page is read in two steps: the ids of the page from
an index (cheap to skip over, even deep into the list), then those rows joined in.
Totals are exact up to EXACT_COUNT_LIMIT and estimated beyond (see ``fetch_page``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from gavel.evaluations import entity_view

LEVELS = ("advisory", "mandatory")
ENTITY_TYPES = ("stack", "account")
KINDS = ("preview", "update", "refresh", "destroy", "scan", "audit")
OUTCOMES = ("pass", "advisory", "mandatory", "error")
STATUSES = ("pending", "finished")
EXACT_COUNT_LIMIT = 10_000

# filter name -> condition on the table; {0}, {1} become the bound values' $n. An
# entity is matched with its type (told by its key) so that the entity indexes apply.
ENTITY = "entity_type = {0} AND entity_key = {1}"
VIOLATION_FILTERS: dict[str, str] = {
    "entity": ENTITY,
    "entityType": "entity_type = {0}",
    "group": "groups @> ARRAY[{0}::text]",
    "pack": "pack = {0}",
    "policy": "policy = {0}",
    "level": "level = {0}",
    "urn": "urn = {0}",
}
# sort key -> columns; entities sort accounts first, then stacks, each by name
VIOLATION_SORTS: dict[str, tuple[str, ...]] = {
    "level": ("level",), "pack": ("pack",), "policy": ("policy",),
    "entity": ("entity_type", "entity_key"), "observedAt": ("observed_at",),
}

EVALUATION_FILTERS: dict[str, str] = {
    "entity": ENTITY,
    "entityType": "entity_type = {0}",
    "kind": "kind = {0}",
    "outcome": "outcome = {0}",
    "status": "status = {0}",
    "since": "received_at >= {0}",
    "until": "received_at < {0}",
    "audit": "audit_id = {0}",
}
# written as constants rather than bound, so that the planner can use the partial index
BLOCKING: dict[bool, str] = {True: "blocking", False: "NOT blocking"}


@dataclass
class Where:
    """Conditions joined by AND; their values become $1, $2, ... in order."""

    params: list[Any] = field(default_factory=list)
    clauses: list[str] = field(default_factory=list)

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def add(self, condition: str, *values: Any) -> None:
        self.clauses.append(condition.format(*(self.bind(v) for v in values)))

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses)


def _where(org_id: int, templates: Mapping[str, str], filters: Mapping[str, Any]) -> Where:
    where = Where()
    where.add("org_id = {0}", org_id)
    for name, value in filters.items():
        where.add(templates[name], *(entity_of(value) if name == "entity" else (value,)))
    return where


def entity_of(key: str) -> tuple[str, str]:
    """(entity type, key): stacks are "project/stack"; account names have no "/"."""
    return ("stack" if "/" in key else "account"), key


def violation_order(sort: Sequence[tuple[str, bool]]) -> str:
    """The ORDER BY list, ending with the id so that pages never overlap. The id follows
    the last key's direction: a single-key sort then reads its index either way."""
    keys = [f"{column} {'DESC' if desc else 'ASC'}"
            for name, desc in sort for column in VIOLATION_SORTS[name]]
    last_desc = bool(sort) and sort[-1][1]
    return ", ".join([*keys, f"violation_id {'DESC' if last_desc else 'ASC'}"])


@dataclass(frozen=True)
class PagedQuery:
    """A page query (LIMIT and OFFSET come after ``params``), a count that stops at its
    last parameter, and the bare selection for the planner's estimate."""

    page_sql: str
    count_sql: str
    selection_sql: str
    params: tuple[Any, ...]


def _paged_query(page_sql: str, table: str, where: Where) -> PagedQuery:
    selection = f"SELECT 1 FROM {table} WHERE {where.sql}"
    n = len(where.params)
    return PagedQuery(page_sql,
                      f"SELECT count(*) FROM ({selection} LIMIT ${n + 1}) AS capped",
                      selection, tuple(where.params))


@dataclass(frozen=True)
class ResultPage:
    rows: list[asyncpg.Record]
    total: int
    exact: bool


async def _count(pool: asyncpg.Pool, query: PagedQuery) -> tuple[int, int | None]:
    """(the count up to EXACT_COUNT_LIMIT + 1, the planner's estimate when it is over)."""
    async with pool.acquire() as conn:
        counted = int(await conn.fetchval(query.count_sql, *query.params,
                                          EXACT_COUNT_LIMIT + 1))
        if counted <= EXACT_COUNT_LIMIT:
            return counted, None
        plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {query.selection_sql}",
                                   *query.params)
    if isinstance(plan, str):
        plan = orjson.loads(plan)
    return counted, int(plan[0]["Plan"]["Plan Rows"])


async def fetch_page(pool: asyncpg.Pool, query: PagedQuery, offset: int,
                     limit: int) -> ResultPage:
    """The page's rows and the total. Counting a million rows alone takes longer than a
    page should, so past EXACT_COUNT_LIMIT the total is the planner's estimate, kept
    consistent with what the page saw so that ``next`` is offered exactly while rows
    remain. The page and the count run concurrently on two connections."""
    rows, (counted, estimate) = await asyncio.gather(
        pool.fetch(query.page_sql, *query.params, limit + 1, offset), _count(pool, query))
    more = len(rows) > limit
    rows = rows[:limit]
    if estimate is None:
        return ResultPage(rows, counted, exact=True)
    if rows and not more:  # the last page: everything before it and what it holds
        return ResultPage(rows, offset + len(rows), exact=True)
    if not rows:  # past the end: there are at most ``offset``
        return ResultPage(rows, min(estimate, offset), exact=False)
    return ResultPage(rows, max(estimate, offset + limit + 1), exact=False)


def violation_query(org_id: int, filters: Mapping[str, Any],
                    sort: Sequence[tuple[str, bool]]) -> PagedQuery:
    where = _where(org_id, VIOLATION_FILTERS, filters)
    order, n = violation_order(sort), len(where.params)
    page = f"""
SELECT cv.violation_id, cv.evaluation_id, cv.entity_type, cv.entity_key, cv.groups, cv.pack,
       cv.pack_version, cv.version_tag, cv.policy, cv.level, cv.urn, cv.message, cv.details,
       cv.observed_at
FROM (SELECT violation_id FROM current_violations WHERE {where.sql}
      ORDER BY {order} LIMIT ${n + 1} OFFSET ${n + 2}) AS page
JOIN current_violations cv USING (violation_id)
ORDER BY {order}"""
    return _paged_query(page, "current_violations", where)


def evaluation_query(org_id: int, filters: Mapping[str, Any]) -> PagedQuery:
    rest = dict(filters)
    blocking = rest.pop("blocking", None)
    where = _where(org_id, EVALUATION_FILTERS, rest)
    if blocking is not None:
        where.add(BLOCKING[blocking])
    n = len(where.params)
    page = f"""
SELECT e.id, e.event_id, e.entity_type, e.entity_key, e.kind, e.status, e.outcome, e.blocking,
       e.resource_count, e.received_at, e.occurred_at, e.finished_at, e.audit_id, e.scan_id,
       e.chunk, e.chunks,
       CASE WHEN e.status = 'finished' THEN
           (SELECT coalesce(sum((p ->> 'violations')::int), 0)
            FROM jsonb_array_elements(e.packs) AS p) END AS violation_count
FROM (SELECT id FROM evaluations WHERE {where.sql}
      ORDER BY received_at DESC, id LIMIT ${n + 1} OFFSET ${n + 2}) AS page
JOIN evaluations e USING (id)
ORDER BY e.received_at DESC, e.id"""
    return _paged_query(page, "evaluations", where)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def evaluation_summary(row: asyncpg.Record, org: str) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "id": str(row["id"]), "eventId": row["event_id"], "entity": entity_view(row, org),
        "kind": row["kind"], "status": row["status"], "outcome": row["outcome"],
        "blocking": row["blocking"], "resourceCount": row["resource_count"],
        "violationCount": row["violation_count"], "receivedAt": _iso(row["received_at"]),
        "occurredAt": _iso(row["occurred_at"]), "finishedAt": _iso(row["finished_at"]),
        "auditId": str(row["audit_id"]) if row["audit_id"] else None}
    if row["scan_id"] is not None:
        summary.update(scanId=row["scan_id"], chunk=row["chunk"], chunks=row["chunks"])
    return summary


def violation_view(row: asyncpg.Record, org: str) -> dict[str, Any]:
    return {"id": row["violation_id"], "entity": entity_view(row, org), "groups": row["groups"],
            "pack": row["pack"], "packVersion": row["pack_version"],
            "versionTag": row["version_tag"], "policy": row["policy"], "level": row["level"],
            "urn": row["urn"], "message": row["message"], "details": row["details"],
            "observedAt": _iso(row["observed_at"]), "evaluationId": str(row["evaluation_id"])}


def pulumi_violation_view(row: asyncpg.Record) -> dict[str, Any]:
    """Pulumi's PolicyViolationV2 fields; an account's name stands in for the stack."""
    if row["entity_type"] == "stack":
        project, _, stack = row["entity_key"].partition("/")
        where: dict[str, Any] = {"projectName": project, "stackName": stack}
    else:
        where = {"projectName": "", "stackName": row["entity_key"],
                 "accountName": row["entity_key"]}
    return {"id": str(row["violation_id"]), **where, "entityType": row["entity_type"],
            "policyPack": row["pack"], "policyPackTag": row["version_tag"],
            "policyName": row["policy"], "resourceURN": row["urn"] or "",
            "message": row["message"], "level": row["level"],
            "observedAt": _iso(row["observed_at"])}
