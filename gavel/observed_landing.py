"""Where a page by number of the current violations sorted by observedAt starts.

The worker stores a violation with the time its evaluation was stored (observed_at) and
an id from a sequence, in one transaction: ids rise with observed_at but for the few
transactions that overlap. The counts per range of ids (``violation_id_range_counts``)
also bound when each range's violations were observed (``IdRange``). A page that
starts after ``skip`` rows in the order of observed_at then starts at a time ``at``:
the ranges wholly before it count whole, and of the few ranges it falls within
(``straddling``) only the rows from ``at`` on, between ``at`` and ``until``, are counted
exactly (``rows_before``); the page skips the rest of its ``skip`` from ``at`` on. Ids
that do not rise with time (violations written otherwise) leave many ranges straddling
a time: then past STRADDLING_LIMIT rows the counts do not tell (None).

Read in descending order, everything mirrors: ``at`` is the last time of the page's
rows, rows "before" it are observed after it, and ``until`` is the earliest time a
straddling range's rows may hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# the rows of straddling ranges a landing may have to count
STRADDLING_LIMIT = 65_536


@dataclass(frozen=True)
class IdRange:
    """A range of ids: its matching current violations, and none of them observed
    before ``first`` or after ``last`` (None: unknown)."""

    id_range: int
    violations: int
    first: datetime | None
    last: datetime | None


@dataclass(frozen=True)
class ObservedLanding:
    at: datetime  # the page's rows are observed at or after this (read descending: before)
    before: int  # rows of the ranges wholly before ``at``, and of the straddling ranges
    straddling: tuple[int, ...]  # ranges with rows on both sides of ``at``
    until: datetime  # no row of a straddling range lies past this, in the order read

    def rows_before(self, straddling_from_at: int) -> int:
        """The rows before ``at`` in the order read, given how many rows of the
        straddling ranges lie at ``at`` or after it."""
        return self.before - straddling_from_at


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NEVER = float("-inf")
_ALWAYS = float("inf")


def _span(r: IdRange, descending: bool) -> tuple[float, float]:
    """The range's times as numbers increasing in the order read (unknown: unbounded)."""
    first = _micros(r.first) if r.first is not None else _NEVER
    last = _micros(r.last) if r.last is not None else _ALWAYS
    return (-last, -first) if descending else (first, last)


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


def land(ranges: Sequence[IdRange], descending: bool, skip: int,
         limit: int = STRADDLING_LIMIT) -> ObservedLanding | None:
    """The latest time (in the order read) that at most ``skip`` rows can precede: the
    first time of a range such that the ranges starting before it hold at most
    ``skip`` rows. None when no range's first time is known, or the ranges it falls
    within hold more than ``limit`` rows."""
    spans = sorted(((*_span(r, descending), r) for r in ranges if r.violations > 0),
                   key=lambda s: s[0])
    chosen: tuple[float, IdRange] | None = None
    seen = starting_before = 0  # rows of the ranges whose first time is before start's
    previous: float | None = None
    for start, _, r in spans:
        if start != previous:
            starting_before, previous = seen, start
        if starting_before > skip:
            break
        if start != _NEVER:
            chosen = (start, r)
        seen += r.violations
    if chosen is None:
        return None
    at_number, at_range = chosen
    wholly_before = sum(r.violations for _, end, r in spans if end < at_number)
    straddling = [r for start, end, r in spans if start < at_number <= end]
    straddling_rows = sum(r.violations for r in straddling)
    if straddling_rows > limit:
        return None
    at = at_range.last if descending else at_range.first
    assert at is not None
    until = at
    for r in straddling:
        bound = r.first if descending else r.last
        if bound is None:
            return None
        until = min(until, bound) if descending else max(until, bound)
    return ObservedLanding(at, wholly_before + straddling_rows,
                           tuple(r.id_range for r in straddling), until)
