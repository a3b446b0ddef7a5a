"""Paged queries over results: the evaluation history and the current violations.

Filters and sort keys map onto whitelisted SQL fragments; every value a caller
gives is a bound parameter. A page is read in two steps: the ids of the page from
an index, then those rows joined in. A page either skips rows (OFFSET: any page
number, exact) or seeks past the sort key of a row of the page before (``Seek``: flat
however deep; see ``gavel.keyset``), or reads the end of the list backwards (the last
page). A sort led by the enforcement level and followed by other keys reads one branch
per level in the requested order, so that one index on (org, level, key, id) serves
both directions of the key; a sort by pack then policy or observedAt reads one branch
per pack of the org the same way. Reading a page and the list's total:
``gavel.result_pages``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from gavel import compliance, keyset
from gavel.evaluation_counts import ReceivedCounts
from gavel.evaluations import entity_view
from gavel.keyset import Column, Order

LEVELS = compliance.VIOLATION_LEVELS
ENTITY_TYPES = ("stack", "account")
KINDS = ("preview", "update", "refresh", "destroy", "scan", "audit")
OUTCOMES = ("pass", "advisory", "mandatory", "error")
STATUSES = ("pending", "finished")

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

    def copy(self) -> Where:
        """The same conditions, to add more to without changing these."""
        return Where(list(self.params), list(self.clauses))


def _where(org_id: int, templates: Mapping[str, str], filters: Mapping[str, Any]) -> Where:
    where = Where()
    where.add("org_id = {0}", org_id)
    for name, value in filters.items():
        where.add(templates[name], *(entity_of(value) if name == "entity" else (value,)))
    return where


def entity_of(key: str) -> tuple[str, str]:
    """(entity type, key): stacks are "project/stack"; account names have no "/"."""
    return ("stack" if "/" in key else "account"), key


# sort column -> how its value comes back in a continuation token
VIOLATION_KEY_DECODERS: dict[str, keyset.Decoder] = {
    "level": keyset.text(LEVELS), "pack": keyset.text(), "policy": keyset.text(),
    "entity_type": keyset.text(ENTITY_TYPES), "entity_key": keyset.text(),
    "observed_at": keyset.timestamp, "violation_id": keyset.bigint,
}
# A leading sort column with these few values, followed by more than the id, is read
# one branch per value: then the rest leads each branch's seek, whose estimate Postgres
# takes from the first column of a row comparison.
BRANCHES: dict[str, tuple[str, ...]] = {"level": LEVELS, "entity_type": ENTITY_TYPES}
# Leading sort columns whose few values are the org's own (its packs), with the one
# column that may follow them (then the id): an index on (org, lead, column, id) serves
# each pair. The values are listed first, by a loose scan of an index led by (org,
# lead), and read one branch each as above, unless there are more than
# MAX_LISTED_BRANCHES of them. Every branch is read (LIMIT rows each), so a pair without
# such an index would sort every value's rows: those sorts are read in one range.
LISTED_BRANCHES: dict[str, tuple[str, ...]] = {"pack": ("policy", "observed_at")}
MAX_LISTED_BRANCHES = 64
EVALUATION_ORDER = Order((Column("received_at", True, keyset.timestamp),
                          Column("id", False, keyset.uuid_text)))


def violation_order(sort: Sequence[tuple[str, bool]]) -> Order:
    """The sort's columns, ending with the id so that pages never overlap. The id follows
    the last key's direction: a single-key sort then reads its index either way."""
    columns = [Column(column, desc, VIOLATION_KEY_DECODERS[column])
               for name, desc in sort for column in VIOLATION_SORTS[name]]
    last_desc = bool(sort) and sort[-1][1]
    return Order((*columns, Column("violation_id", last_desc, keyset.bigint)))


@dataclass(frozen=True)
class Seek:
    """Continue after the row whose sort key this is, or before it (read backwards). Before
    no key at all is the end of the list: its last rows, read backwards."""

    key: tuple[Any, ...]
    before: bool = False

    @property
    def from_end(self) -> bool:
        return self.before and not self.key

    @classmethod
    def end(cls) -> Seek:
        return cls((), before=True)


@dataclass(frozen=True)
class From:
    """Where a page by number starts reading: at the rows whose ``columns`` compare with
    ``values`` by ``op``; in the branch of the leading column's value ``branch`` only
    (None: the list is not read in branches)."""

    columns: tuple[str, ...]
    op: str
    values: tuple[Any, ...]
    branch: str | None = None

    def sql(self, bind: keyset.Bind) -> str:
        if len(self.columns) == 1:
            return f"{self.columns[0]} {self.op} {bind(self.values[0])}"
        return (f"({', '.join(self.columns)}) {self.op} "
                f"({', '.join(bind(v) for v in self.values)})")


@dataclass(frozen=True)
class PagedQuery:
    """A list: rows of ``table`` matching ``where`` in ``order``, shown as ``select`` (on
    alias ``t``). Its pages, a count that stops at its last parameter, and the bare
    selection for the planner's estimate."""

    table: str
    id_column: str
    select: str
    where: Where
    order: Order
    fixed: Mapping[str, str] = field(default_factory=dict)  # column = value, by a filter
    org_id: int | None = None  # whose values of a LISTED_BRANCHES column are listed
    # plan each statement for its values (see _connection)
    planned_for_values: bool = False
    # how many rows match, exact, from counts kept as the rows are written
    kept: compliance.KeptCounts | None = None
    # how many evaluations match, exact, by the hour they came (the history's)
    received: ReceivedCounts | None = None

    @property
    def params(self) -> tuple[Any, ...]:
        return tuple(self.where.params)

    @property
    def selection_sql(self) -> str:
        return f"SELECT 1 FROM {self.table} WHERE {self.where.sql}"

    @property
    def count_sql(self) -> str:
        n = len(self.where.params)
        return f"SELECT count(*) FROM ({self.selection_sql} LIMIT ${n + 1}) AS capped"

    def _read_order(self, seek: Seek | None) -> Order:
        return self.order.reversed() if seek and seek.before else self.order

    def page(self, limit: int, offset: int = 0, seek: Seek | None = None,
             listed: Sequence[str] | None = None,
             branch_sizes: Mapping[str, int] | None = None,
             start: From | None = None) -> tuple[str, tuple[Any, ...]]:
        """A page's SQL and parameters. Seeking before a key reads the order backwards,
        so those rows come nearest first. ``listed``: the values of a LISTED_BRANCHES
        lead from the seek on (``listed_values_sql``), one branch each. ``branch_sizes``:
        the rows of each value of a BRANCHES lead, if known, so that a branch skips
        without counting the branches before it. ``start``: the rows are read from there
        on (in the order read), ``offset`` counting from its first row."""
        where = self.where.copy()
        order = self._read_order(seek)
        key = seek.key if seek and seek.key else None
        lead = order.columns[0].name
        if listed is not None and len(order.columns) > 2:
            ids = self._branched_ids(where, order, key, limit, offset, list(listed), where.bind)
        elif lead in BRANCHES and len(order.columns) > 2:
            ids = self._branched_ids(where, order, key, limit, offset,
                                     self._known_values(order, key), "'{}'".format,
                                     branch_sizes, start)
        else:
            if key is not None:
                where.clauses.append(keyset.seek_after(order.columns, key, where.bind))
            if start is not None:
                where.clauses.append(start.sql(where.bind))
            ids = (f"SELECT {self.id_column} FROM {self.table} WHERE {where.sql}\n"
                   f"      ORDER BY {order.sql} LIMIT {where.bind(limit)} "
                   f"OFFSET {where.bind(offset)}")
        sql = f"""
SELECT {self.select}
FROM ({ids}) AS page
JOIN {self.table} t USING ({self.id_column})
ORDER BY {order.sql_on("t")}"""
        return sql, tuple(where.params)

    def listed_values_sql(self, offset: int,
                          seek: Seek | None) -> tuple[str, tuple[Any, ...]] | None:
        """The org's values of the sort's leading column, if it and the next are a pair
        of LISTED_BRANCHES, in the order read and from the seek's value on: a
        loose index scan, one index probe per value. None: the page is read otherwise
        (a filter fixes the column, or a page by number past the first, which counts the
        rows it skips in one ordered range)."""
        order = self._read_order(seek)
        lead = order.columns[0]
        if (len(order.columns) != 3 or order.columns[1].name not in LISTED_BRANCHES.get(
                lead.name, ()) or self.org_id is None or lead.name in self.fixed
                or (offset and seek is None)):
            return None
        column, op = lead.name, "<" if lead.descending else ">"
        params: list[Any] = [self.org_id]
        start = ""
        if seek is not None and seek.key:
            params.append(seek.key[0])
            start = f" AND {column} {op}= $2"
        first = f"ORDER BY {column} {'DESC' if lead.descending else 'ASC'} LIMIT 1"
        sql = f"""
WITH RECURSIVE lead_values AS (
    (SELECT {column} AS value FROM {self.table} WHERE org_id = $1{start} {first})
    UNION ALL
    SELECT (SELECT {column} FROM {self.table}
            WHERE org_id = $1 AND {column} {op} lead_values.value {first})
    FROM lead_values WHERE lead_values.value IS NOT NULL)
SELECT value FROM lead_values WHERE value IS NOT NULL LIMIT {MAX_LISTED_BRANCHES + 1}"""
        return sql, tuple(params)

    def _known_values(self, order: Order, key: tuple[Any, ...] | None) -> list[str]:
        """The BRANCHES values of the leading column in its order, from the key's on."""
        lead = order.columns[0]
        values = [v for v in sorted(BRANCHES[lead.name], reverse=lead.descending)
                  if self.fixed.get(lead.name, v) == v]
        if key is not None:  # the branches before the key's are done
            values = values[values.index(key[0]):] if key[0] in values else []
        return values

    def _branched_ids(self, where: Where, order: Order, key: tuple[Any, ...] | None,
                      limit: int, offset: int, values: list[str], literal: keyset.Bind,
                      sizes: Mapping[str, int] | None = None,
                      start: From | None = None) -> str:
        """One branch per value of the leading column (``values``, in its order and from
        the key's on; ``literal`` writes one in the SQL), each a range of an index on
        (org, lead, rest..., id) read in the order of the rest, concatenated in the
        lead's order. A branch skips what OFFSET leaves of it after the branches before
        (for a page past the first: counted, unless their ``sizes`` are known; then the
        branches wholly before the page are left out). The branch of ``start`` reads
        from there."""
        lead, rest = order.columns[0], order.without_first()
        if offset and sizes is not None:
            values, offset = skip_branches(sizes, values, offset)
        if not values:
            return f"SELECT {self.id_column} FROM {self.table} WHERE false"
        matching = where.sql
        limit_at = where.bind(limit)
        offset_at = where.bind(offset) if offset else None
        written = [literal(value) for value in values]
        branches = []
        for i, value in enumerate(values):
            clauses = [matching, f"{lead.name} = {written[i]}"]
            if key is not None and value == key[0]:
                clauses.append(keyset.seek_after(rest.columns, key[1:], where.bind))
            if start is not None and value == start.branch:
                clauses.append(start.sql(where.bind))
            skip = ""
            if offset_at is not None and i == 0:
                skip = f" OFFSET {offset_at}"
            elif offset_at is not None and sizes is None:
                earlier = ", ".join(written[:i])
                skip = (f" OFFSET greatest(0, {offset_at} - (SELECT count(*) FROM {self.table}"
                        f" WHERE {matching} AND {lead.name} IN ({earlier})))")
            branches.append(f"(SELECT {', '.join(order.names)} FROM {self.table}\n"
                            f"       WHERE {' AND '.join(clauses)}\n"
                            f"       ORDER BY {rest.sql} LIMIT {limit_at}{skip})")
        union = "\n      UNION ALL ".join(branches)
        return (f"SELECT {self.id_column} FROM ({union}) AS branches\n"
                f"      ORDER BY {order.sql} LIMIT {limit_at}")


def skip_branches(sizes: Mapping[str, int], values: Sequence[str],
                  skip: int) -> tuple[list[str], int]:
    """The values (in the order read) from the one whose branch holds the ``skip``-th row
    on, and the rows of that branch before that row: the branches wholly before it are
    skipped by their ``sizes``."""
    left = list(values)
    while left and sizes.get(left[0], 0) <= skip:
        skip -= sizes.get(left[0], 0)
        left = left[1:]
    return left, skip


def violation_query(org_id: int, filters: Mapping[str, Any],
                    sort: Sequence[tuple[str, bool]]) -> PagedQuery:
    fixed = {"level": filters.get("level"), "entity_type": filters.get("entityType"),
             "pack": filters.get("pack")}
    if "entity" in filters:
        fixed["entity_type"] = entity_of(filters["entity"])[0]
    return PagedQuery(
        "current_violations", "violation_id", """\
t.violation_id, t.evaluation_id, t.entity_type, t.entity_key, t.groups, t.pack,
       t.pack_version, t.version_tag, t.policy, t.level, t.urn, t.message, t.details,
       t.observed_at""", _where(org_id, VIOLATION_FILTERS, filters), violation_order(sort),
        {column: value for column, value in fixed.items() if value is not None}, org_id,
        planned_for_values="group" in filters,
        kept=compliance.KeptCounts.of(org_id, filters))


def evaluation_query(org_id: int, filters: Mapping[str, Any]) -> PagedQuery:
    rest = dict(filters)
    blocking = rest.pop("blocking", None)
    where = _where(org_id, EVALUATION_FILTERS, rest)
    if blocking is not None:
        where.add(BLOCKING[blocking])
    return PagedQuery("evaluations", "id", """\
t.id, t.event_id, t.entity_type, t.entity_key, t.kind, t.status, t.outcome, t.blocking,
       t.resource_count, t.received_at, t.occurred_at, t.finished_at, t.audit_id, t.scan_id,
       t.chunk, t.chunks,
       CASE WHEN t.status = 'finished' THEN
           (SELECT coalesce(sum((p ->> 'violations')::int), 0)
            FROM jsonb_array_elements(t.packs) AS p) END AS violation_count""",
                      where, EVALUATION_ORDER, received=ReceivedCounts.of(org_id, filters))


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
