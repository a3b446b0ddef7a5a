"""Reading a page of a ``PagedQuery`` and the list's total.

The page and the count run concurrently on two connections. A query with kept counts
(``PagedQuery.kept``: the current violations, by the filters the compliance counts are
kept by) has its total exact, and reads a page given by number from the nearer end of
the list, a sort led by level or entity type skipping whole branches by their counts,
the order by id (alone or after the level) starting at the range of ids that holds the
page, the order by observedAt (alone or after the level) at the time the ranges of ids
place it (``gavel.observed_landing``), a sort by entity (alone or after the level) at
the block of entities that holds it (``gavel.entity_blocks``), and a sort led by pack
or policy at the value that does. The evaluation history, filtered at most by entity
type, kind and the time received, has its total exact from the counts of evaluations
by hour received, and reads a page given by number from the nearer end of the list, at
the hour that holds it (``gavel.evaluation_counts``).
Otherwise totals are exact up to EXACT_COUNT_LIMIT and the planner's
estimate beyond, kept consistent with what the page saw (see ``fetch_page``). A page
read backwards (``Seek.before``, the last page) comes back in the list's order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
import orjson

from gavel import compliance, observed_landing, result_queries
from gavel.evaluation_counts import HOUR, ReceivedCounts
from gavel.keyset import Order
from gavel.result_queries import From, PagedQuery, Seek

EXACT_COUNT_LIMIT = 10_000
MAX_ID = 2 ** 63 - 1  # the largest bigint


@dataclass(frozen=True)
class ResultPage:
    """A page's rows and the list's total; ``rows_before`` tells, when the page was read
    backwards, whether rows precede it (else its position tells)."""

    rows: list[asyncpg.Record]
    total: int
    exact: bool
    rows_before: bool | None = None


@asynccontextmanager
async def _connection(pool: asyncpg.Pool,
                      query: PagedQuery) -> AsyncIterator[asyncpg.Connection]:
    """A pool connection for the query's statements. For a query ``planned_for_values``
    they run in a transaction of their own that plans each for its values (the setting
    goes with the transaction): a prepared statement otherwise goes to a plan made
    without them after a few runs, and for filter[group] that plan collected every row
    of a big group from the GIN index (80 ms). It costs 1-2 ms a page, so only there."""
    async with pool.acquire() as conn:
        if not query.planned_for_values:
            yield conn
            return
        async with conn.transaction():
            await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            yield conn


async def _fetch(pool: asyncpg.Pool, query: PagedQuery, sql: str,
                 params: Sequence[Any]) -> list[asyncpg.Record]:
    async with _connection(pool, query) as conn:
        return list(await conn.fetch(sql, *params))


async def _count(pool: asyncpg.Pool, query: PagedQuery) -> tuple[int, int | None]:
    """(the count up to EXACT_COUNT_LIMIT + 1, the planner's estimate when it is over);
    (the total, None) for a query with kept counts."""
    if query.kept is not None:
        return sum((await query.kept.read(pool)).values()), None
    if query.received is not None:
        return await query.received.total(pool), None
    async with _connection(pool, query) as conn:
        counted = int(await conn.fetchval(query.count_sql, *query.params,
                                          EXACT_COUNT_LIMIT + 1))
        if counted <= EXACT_COUNT_LIMIT:
            return counted, None
        plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {query.selection_sql}",
                                   *query.params)
    if isinstance(plan, str):
        plan = orjson.loads(plan)
    return counted, int(plan[0]["Plan"]["Plan Rows"])


async def listed_values(pool: asyncpg.Pool, query: PagedQuery, offset: int,
                        seek: Seek | None) -> list[str] | None:
    """The values to branch on (``PagedQuery.listed_values_sql``), if there are few."""
    statement = query.listed_values_sql(offset, seek)
    if statement is None:
        return None
    values = [row[0] for row in await pool.fetch(statement[0], *statement[1])]
    return values if len(values) <= result_queries.MAX_LISTED_BRANCHES else None


async def fetch_page(pool: asyncpg.Pool, query: PagedQuery, offset: int, limit: int,
                     seek: Seek | None = None) -> ResultPage:
    """The page's rows and the total. ``offset`` is where the page starts: skipped to
    without ``seek``, told by the token with it. Counting a million rows alone takes
    longer than a page should, so past EXACT_COUNT_LIMIT the total is the planner's
    estimate, kept consistent with what the page saw so that ``next`` is offered
    exactly while rows remain. The page and the count run concurrently on two
    connections. With kept counts the total is exact, and a page by number past the
    first is read from the nearer end (``_by_number``, ``_by_hour``)."""
    if seek is None and offset and query.kept is not None:
        return await _by_number(pool, query, query.kept, offset, limit)
    if seek is None and offset and query.received is not None:
        return await _by_hour(pool, query, query.received, offset, limit)
    listed = await listed_values(pool, query, offset, seek)
    sql, params = query.page(limit + 1, 0 if seek else offset, seek, listed)
    rows, (counted, estimate) = await asyncio.gather(_fetch(pool, query, sql, params),
                                                     _count(pool, query))
    if seek is not None and seek.before:
        return await _backwards(pool, query, offset, limit, seek, rows, counted, estimate)
    more = len(rows) > limit
    rows = rows[:limit]
    if estimate is None:
        return ResultPage(rows, counted, exact=True)
    if rows and not more:  # the last page: everything before it and what it holds
        return ResultPage(rows, offset + len(rows), exact=True)
    if not rows:  # past the end: there are at most ``offset``
        return ResultPage(rows, min(estimate, offset), exact=False)
    return ResultPage(rows, max(estimate, offset + limit + 1), exact=False)


async def _by_number(pool: asyncpg.Pool, query: PagedQuery, kept: compliance.KeptCounts,
                     offset: int, limit: int) -> ResultPage:
    """A page past the first by its number, with kept counts: read from the nearer end
    of the list (backwards from the end when fewer rows are skipped that way), so that
    at most half of the list is skipped. Whole branches of a sort led by level or entity
    type are skipped by their counts; an order by id (alone or after the level) starts
    at the range of ids that holds the page, one by observed_at at the time the ranges
    place it, one by entity (alone or after the level) at the block of entities that
    holds it, and a sort led by pack or policy at the value that does, skipping only
    the rows of that range, time, block or value before the page."""
    counts = await kept.read(pool)
    total = sum(counts.values())
    after = total - offset - limit
    if offset >= total:
        return ResultPage([], total, exact=True)
    sizes = compliance.counted_by(counts, query.order.columns[0].name)
    backwards = _nearer_from_the_end(query, sizes, offset, max(after, 0))
    read = query.order.reversed() if backwards else query.order
    skip = max(after, 0) if backwards else offset
    seek = Seek.end() if backwards else None
    lead = read.columns[0]
    rows_from = None
    start = await _start(pool, query, kept, read, counts, skip)
    if start is not None:
        skip, rows_from = start.skip, start.rows_from
        if start.key is not None:
            seek = Seek(start.key, before=backwards)
    elif lead.name in compliance.LANDING_COLUMNS and skip and lead.name not in query.fixed:
        landing = await kept.landing(pool, lead.name, lead.descending, skip)
        if landing is not None:
            value, before = landing
            rows_from = From((lead.name,), "<=" if lead.descending else ">=", (value,))
            skip -= before
    sql, params = query.page(min(limit, total - offset), skip, seek, None, sizes, rows_from)
    rows = await _fetch(pool, query, sql, params)
    return ResultPage(rows[::-1] if backwards else rows, total, exact=True)


async def _by_hour(pool: asyncpg.Pool, query: PagedQuery, counts: ReceivedCounts,
                   offset: int, limit: int) -> ResultPage:
    """A page of the evaluation history past the first by its number: read from the
    nearer end of the list, from the hour that holds it, skipping only the rows of that
    hour before it (``gavel.evaluation_counts``)."""
    total, landing = await counts.landing(pool, offset, limit)
    if offset >= total:
        return ResultPage([], total, exact=True)
    size = min(limit, total - offset)
    if landing is None:  # the counts of the days and of the hours disagree
        sql, params = query.page(size, offset)
        return ResultPage(await _fetch(pool, query, sql, params), total, exact=True)
    received = query.order.columns[0].name
    if landing.backwards:
        start = From((received,), ">=", (landing.hour,))
        sql, params = query.page(size, landing.skip, Seek.end(), start=start)
        return ResultPage((await _fetch(pool, query, sql, params))[::-1], total, exact=True)
    start = From((received,), "<", (landing.hour + HOUR,))
    sql, params = query.page(size, landing.skip, start=start)
    return ResultPage(await _fetch(pool, query, sql, params), total, exact=True)


def _nearer_from_the_end(query: PagedQuery, sizes: dict[str, int] | None, offset: int,
                         after: int) -> bool:
    """Whether the page is better read backwards from the end: fewer rows follow it
    than precede it, not counting whole branches of the lead, skipped by their sizes."""
    if sizes is None:
        return after < offset
    values = sorted(sizes, reverse=query.order.columns[0].descending)
    return (result_queries.skip_branches(sizes, values[::-1], after)[1]
            < result_queries.skip_branches(sizes, values, offset)[1])


@dataclass(frozen=True)
class _Start:
    """Where a page by number starts: after a key (``key``: the seek's) or at a
    condition (``rows_from``), and the rows to skip from there (after the key; for a
    condition, counted from the list's first row but for those it leaves out)."""

    key: tuple[Any, ...] | None
    rows_from: From | None
    skip: int


async def _start(pool: asyncpg.Pool, query: PagedQuery, kept: compliance.KeptCounts,
                 read: Order, counts: dict[tuple[str, str], int], skip: int) -> _Start | None:
    """Where a page by number of an order by id, by observed_at or by entity (alone or
    after the level) starts when read in the order ``read`` after ``skip`` rows; None
    when the counts do not tell."""
    prefix: tuple[Any, ...] = ()
    rest = read.names
    within = skip
    if rest[0] == "level" and len(rest) > 1:
        sizes = compliance.counted_by(counts, "level") or {}
        levels, within = result_queries.skip_branches(
            sizes, sorted(sizes, reverse=read.columns[0].descending), skip)
        if not levels:
            return None
        prefix, kept, rest = (levels[0],), replace(kept, level=levels[0]), rest[1:]
        counts = {key: n for key, n in counts.items() if key[1] == levels[0]}
    descending = read.columns[-1].descending
    if rest == ("violation_id",):
        landing = await kept.id_landing(pool, descending, within)
        if landing is None:
            return None
        first, before = landing
        return _Start((*prefix, first + 1 if descending else first - 1), None, within - before)
    if rest == ("observed_at", "violation_id") and read.columns[-2].descending == descending:
        ranges = await kept.id_ranges(pool)
        observed = None if ranges is None else observed_landing.land(ranges, descending, within)
        if observed is None:
            return None
        from_at = await _straddling_from(pool, query, prefix, observed, descending)
        # ids are positive: the key before every id of the time, in the order read
        return _Start((*prefix, observed.at, MAX_ID if descending else 0), None,
                      within - observed.rows_before(from_at))
    if rest[:2] == ("entity_type", "entity_key"):
        return await _entity_start(pool, kept, read.columns[len(prefix)].descending, counts,
                                   bool(prefix), skip, within)
    return None


async def _entity_start(pool: asyncpg.Pool, kept: compliance.KeptCounts, descending: bool,
                        counts: dict[tuple[str, str], int], after_level: bool, skip: int,
                        within: int) -> _Start | None:
    """Where a page by number of a sort by entity (after the level, if ``after_level``:
    ``kept`` and ``counts`` are then the level's) starts: at the block of entities that
    holds it (of the entity type that does), in the branch of its entity type, or of its
    level. ``within``: the rows of that level to skip."""
    sizes = compliance.counted_by(counts, "entity_type") or {}
    types, in_type = result_queries.skip_branches(sizes, sorted(sizes, reverse=descending),
                                                  within)
    if not types:
        return None
    entity_type = types[0]
    landing = await replace(kept, entity_type=entity_type).entity_landing(
        pool, descending, in_type)
    if landing is None:
        return None
    branch = kept.level if after_level else entity_type
    # Where the branch holds one entity type the condition is on the key alone: an index
    # scan starts at a row comparison led by a column an equality also fixes only after
    # walking the rows before it.
    one_type = not after_level or kept.entity_type is not None
    columns, values = (("entity_key",), ()) if one_type else (("entity_type", "entity_key"),
                                                                (entity_type,))
    rows_from = None
    if not descending:
        rows_from = From(columns, ">=", (*values, landing.first_key), branch)
    elif landing.prior_key is not None:
        rows_from = From(columns, "<", (*values, landing.prior_key), branch)
    elif not one_type:
        rows_from = From(("entity_type",), "<=", (entity_type,), branch)
    # the condition leaves out the blocks before, and in a level's branch the rows of the
    # entity types before
    left_out = landing.before + (within - in_type if after_level else 0)
    return _Start(None, rows_from, skip - left_out)


async def _straddling_from(pool: asyncpg.Pool, query: PagedQuery, level: tuple[Any, ...],
                           observed: observed_landing.ObservedLanding,
                           descending: bool) -> int:
    """How many matching rows of the ranges straddling the landing's time lie at it or
    after it in the order read (an index range of times, or of ids)."""
    if not observed.straddling:
        return 0
    where = query.where.copy()
    if level:
        where.add("level = {0}", *level)
    earliest, latest = ((observed.until, observed.at) if descending
                        else (observed.at, observed.until))
    where.add("observed_at BETWEEN {0} AND {1}", earliest, latest)
    bits = compliance.ID_RANGE_BITS
    where.add("violation_id >= {0} AND violation_id < {1}", min(observed.straddling) << bits,
              (max(observed.straddling) + 1) << bits)
    where.add(f"violation_id >> {bits} = ANY({{0}}::bigint[])", list(observed.straddling))
    async with _connection(pool, query) as conn:
        return int(await conn.fetchval(
            f"SELECT count(*) FROM {query.table} WHERE {where.sql}", *where.params))


async def _backwards(pool: asyncpg.Pool, query: PagedQuery, offset: int, limit: int,
                     seek: Seek, nearest_first: list[asyncpg.Record], counted: int,
                     estimate: int | None) -> ResultPage:
    """A page read backwards, ``limit`` + 1 rows nearest first: the extra row tells
    whether rows precede the page.

    From the end with an exact total, the page is the one its number names (its rows
    are the last ``total - offset``; if the list has changed since the link was made so
    that they are not, it is read by number). From the end with an estimated total it
    is the last ``limit`` rows, and the total is kept within the page's number so that
    it is the last. Before a key, rows follow the page: the row of the token."""
    rows_before = len(nearest_first) > limit
    if seek.from_end and estimate is None:
        if offset < counted <= offset + limit:
            return ResultPage(nearest_first[:counted - offset][::-1], counted, exact=True)
        sql, params = query.page(limit, offset)
        return ResultPage(await _fetch(pool, query, sql, params), counted, exact=True)
    rows = nearest_first[:limit][::-1]
    if estimate is None:
        return ResultPage(rows, counted, exact=True, rows_before=rows_before)
    if seek.from_end:
        total = min(max(estimate, offset + 1), offset + limit)
    elif rows:
        total = max(estimate, offset + limit + 1)
    else:
        total = min(estimate, offset)
    return ResultPage(rows, total, exact=False, rows_before=rows_before)
