"""How many evaluations an org received, per hour and per day (migration 0016, kept by a
trigger as rows come and go, and by the worker's store for the rows it inserts,
migration 0017): the evaluation history's exact total, and the hour that holds a page
given by number, so that the page skips only that hour's rows.

The history is newest first. Rows are numbered in that order over all time; a window
(``since``/``until``) is the run of numbers between the rows received at or after
``until`` and those at or after ``since``, told by the counts of the whole hours and
days after each bound and an exact count of the rest of the bound's hour. A page by
number is read from the nearer end of its window: forwards from the hour that holds its
first row, or backwards from the hour that holds its last one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import asyncpg

from gavel.db import ORG_LOCK_KEY_SQL, columns, org_lock_key

# The first key of an org's advisory lock taken to count its evaluations (the second is
# the org id, as an int): a transaction counting several orgs takes them in the order
# of their ids.
LOCK_CLASS = 0x6776_6563
# the history's filters the counts are kept by, and their columns
COUNTED_FILTERS = {"entityType": "entity_type", "kind": "kind"}
WINDOW_FILTERS = ("since", "until")
HOUR = timedelta(hours=1)

# Said at the start of a transaction whose writer counts the evaluations it inserts
# (``add_inserted``): the trigger leaves that transaction's rows alone (migration 0017).
COUNTED_BY_STATEMENT = "SET LOCAL gavel.evaluations_counted = 'by statement'; "

_TOTAL = ("(SELECT coalesce(sum(evaluations), 0) FROM evaluation_counts\n"
          " WHERE org_id = $1 AND span = 'day'{matching})")
# the matching rows received at or after a time ({at}): in the days after its day, the
# hours after its hour in its day, and the rest of its hour
_NEWER = """(
(SELECT coalesce(sum(evaluations), 0) FROM evaluation_counts
 WHERE org_id = $1 AND span = 'day' AND received > date_trunc('day', {at}, 'UTC'){matching})
+ (SELECT coalesce(sum(evaluations), 0) FROM evaluation_counts
   WHERE org_id = $1 AND span = 'hour' AND received > date_trunc('hour', {at}, 'UTC')
     AND received < date_trunc('day', {at}, 'UTC') + interval '24 hours'{matching})
+ (SELECT count(*) FROM evaluations
   WHERE org_id = $1 AND received_at >= {at}
     AND received_at < date_trunc('hour', {at}, 'UTC') + interval '1 hour'{matching}))"""
# The hour that holds the $2-th matching row (from 0, newest first): the day that does,
# then that day's hour; with the rows newer than the hour, and the hour's own.
_LANDING = """
WITH days AS (
    SELECT received, sum(evaluations) AS n FROM evaluation_counts
    WHERE org_id = $1 AND span = 'day'{matching} GROUP BY received),
day AS (
    SELECT received, newer
    FROM (SELECT received, n, sum(n) OVER (ORDER BY received DESC) - n AS newer
          FROM days) AS d
    WHERE newer <= $2 AND newer + n > $2),
hours AS (
    SELECT received, sum(evaluations) AS n FROM evaluation_counts
    WHERE org_id = $1 AND span = 'hour'{matching}
      AND received >= (SELECT received FROM day)
      AND received < (SELECT received FROM day) + interval '24 hours'
    GROUP BY received)
SELECT h.received, day.newer + h.newer AS newer, h.n
FROM day, (SELECT received, n, sum(n) OVER (ORDER BY received DESC) - n AS newer
           FROM hours) AS h
WHERE day.newer + h.newer <= $2 AND day.newer + h.newer + h.n > $2
"""


_RECOUNT = """
INSERT INTO evaluation_counts (org_id, span, received, entity_type, kind, evaluations)
SELECT e.org_id, s.span, date_trunc(s.span, e.received_at, 'UTC'), e.entity_type, e.kind,
       count(*)
FROM evaluations e CROSS JOIN (VALUES ('hour'), ('day')) AS s(span)
WHERE e.org_id = $1
GROUP BY 1, 2, 3, 4, 5
"""


def counting_locks(rows: str) -> str:
    """A CTE, ``locked``, taking the counting locks of the orgs of ``rows`` (a CTE with a
    column ``org_id``) in the order of their ids: a statement that writes evaluations or
    their counts joins it, so that the locks are held before it writes."""
    return f"""locked AS MATERIALIZED (
    SELECT count(pg_advisory_xact_lock({LOCK_CLASS}, {ORG_LOCK_KEY_SQL})) AS orgs
    FROM (SELECT DISTINCT org_id FROM {rows} ORDER BY org_id) AS o)"""


# Adds $5 evaluations received at $2, of entity type $3 and kind $4, to their org's ($1)
# hour and day, holding the orgs' locks (taken first, in order, as the trigger takes
# them): the count rows in order too.
_ADD_INSERTED = f"""
WITH e AS (
    SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[],
                         $5::bigint[]) AS e(org_id, received_at, entity_type, kind, n)),
{counting_locks("e")}
INSERT INTO evaluation_counts AS c (org_id, span, received, entity_type, kind, evaluations)
SELECT e.org_id, s.span, date_trunc(s.span, e.received_at, 'UTC'), e.entity_type, e.kind,
       sum(e.n)
FROM e CROSS JOIN (VALUES ('hour'), ('day')) AS s(span) CROSS JOIN locked
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 3, 4, 5
ON CONFLICT (org_id, span, received, entity_type, kind)
DO UPDATE SET evaluations = c.evaluations + EXCLUDED.evaluations
"""


class Received(NamedTuple):
    """An evaluation as it is counted."""

    org_id: int
    received_at: datetime
    entity_type: str
    kind: str


async def add_inserted(conn: asyncpg.Connection, inserted: Iterable[Received]) -> None:
    """Count evaluations the transaction inserted (begun with ``COUNTED_BY_STATEMENT``):
    its last statement, so that the counts are locked only while it commits."""
    counted = Counter(inserted)
    if counted:
        await conn.execute(_ADD_INSERTED, *columns(
            [(*row, n) for row, n in counted.items()], len(Received._fields) + 1))


async def recount(conn: asyncpg.Connection, org_id: int) -> None:
    """Count the org's evaluations anew, holding its lock: after rows were written with
    the counting trigger disabled, as the benchmarks' seeds write hundreds of thousands
    in a few transactions (counted as they commit, 25,000 rows of an hour take about 10
    s; the trigger's cost per row grows with the rows a transaction adds to one count)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", LOCK_CLASS,
                           org_lock_key(org_id))
        await conn.execute("DELETE FROM evaluation_counts WHERE org_id = $1", org_id)
        await conn.execute(_RECOUNT, org_id)


@dataclass(frozen=True)
class Window:
    """The matching rows of any time (``total``), those received at or after the
    window's end (``newer``), and the window's own (``rows``)."""

    total: int
    newer: int
    rows: int

    @property
    def older(self) -> int:
        """The matching rows received before the window's start."""
        return self.total - self.newer - self.rows


@dataclass(frozen=True)
class HourLanding:
    """Where a page by number starts: the hour that holds its first row (``backwards``:
    its last), and the rows of the list to skip from that hour on, in the order read
    (newest first; backwards: oldest first)."""

    backwards: bool
    hour: datetime
    skip: int


@dataclass(frozen=True)
class ReceivedCounts:
    """How many of an org's evaluations match a history's filters, by when they came."""

    org_id: int
    matching: tuple[tuple[str, str], ...]  # (column, value) of each counted filter
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def of(cls, org_id: int, filters: Mapping[str, Any]) -> ReceivedCounts | None:
        """None unless the counts are kept by every filter but the window's."""
        if not set(filters) <= {*COUNTED_FILTERS, *WINDOW_FILTERS}:
            return None
        return cls(org_id, tuple((COUNTED_FILTERS[name], str(value))
                                 for name, value in sorted(filters.items())
                                 if name in COUNTED_FILTERS),
                   filters.get("since"), filters.get("until"))

    def _matching(self, first: int) -> str:
        """The counted filters' conditions, their values bound from ``$first`` on."""
        return "".join(f" AND {column} = ${first + i}"
                       for i, (column, _) in enumerate(self.matching))

    @property
    def _values(self) -> list[str]:
        return [value for _, value in self.matching]

    async def window(self, db: asyncpg.Pool | asyncpg.Connection) -> Window:
        params: list[Any] = [self.org_id, *self._values]
        matching = self._matching(2)

        def newer(at: datetime) -> str:
            params.append(at)
            return _NEWER.format(at=f"${len(params)}::timestamptz", matching=matching)

        total = _TOTAL.format(matching=matching)
        since = "NULL" if self.since is None else newer(self.since)  # NULL: every row
        until = "0" if self.until is None else newer(self.until)
        row = await db.fetchrow(f"SELECT {total} AS total, {since} AS since, {until} AS until",
                                *params)
        total_rows, newer_rows = int(row["total"]), int(row["until"])
        since_rows = total_rows if row["since"] is None else int(row["since"])
        return Window(total_rows, newer_rows, max(since_rows - newer_rows, 0))

    async def total(self, db: asyncpg.Pool | asyncpg.Connection) -> int:
        return (await self.window(db)).rows

    async def landing(self, db: asyncpg.Pool | asyncpg.Connection, offset: int,
                      limit: int) -> tuple[int, HourLanding | None]:
        """The window's total, and where the page of ``limit`` rows after ``offset``
        starts (None past the end)."""
        window = await self.window(db)
        if offset >= window.rows:
            return window.rows, None
        size = min(limit, window.rows - offset)
        after = window.rows - offset - size
        backwards = after < offset
        row_number = window.newer + (offset + size - 1 if backwards else offset)
        found = await db.fetchrow(_LANDING.format(matching=self._matching(3)), self.org_id,
                                  row_number, *self._values)
        if found is None:
            return window.rows, None
        newer, rows = int(found["newer"]), int(found["n"])
        if backwards:
            # counted from the oldest: what is skipped from the later of the hour's
            # start and the window's
            older = window.total - newer - rows
            skip = after + window.older - max(older, window.older)
        else:
            skip = row_number - max(newer, window.newer)
        return window.rows, HourLanding(backwards, found["received"], skip)
