"""Where a page by number sorted by observedAt starts, from the ranges of ids."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from gavel.observed_landing import IdRange, land

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def ranges_of(rows: dict[int, list[int]]) -> list[IdRange]:
    """Exact bounds of each range's rows (minutes)."""
    return [IdRange(r, len(times), at(min(times)), at(max(times)))
            for r, times in rows.items() if times]


def test_ranges_that_do_not_overlap_land_on_the_range_that_holds_the_row() -> None:
    ranges = [IdRange(0, 10, at(0), at(9)), IdRange(1, 10, at(10), at(19)),
              IdRange(2, 10, at(20), at(29))]
    landing = land(ranges, False, 15)
    assert landing is not None
    assert (landing.at, landing.rows_before(0), landing.straddling) == (at(10), 10, ())
    landing = land(ranges, True, 15)  # from the end: the middle range again
    assert landing is not None
    assert (landing.at, landing.rows_before(0), landing.straddling) == (at(19), 10, ())
    first = land(ranges, False, 0)
    assert first is not None and (first.at, first.rows_before(0)) == (at(0), 0)


def test_a_range_reaching_past_the_time_is_counted_from_it() -> None:
    ranges = [IdRange(0, 10, at(0), at(12)), IdRange(1, 10, at(10), at(19))]
    landing = land(ranges, False, 15)
    assert landing is not None
    assert (landing.at, landing.straddling, landing.until) == (at(10), (0,), at(12))
    # three of range 0's rows lie at or after minute 10: seven come before it
    assert landing.rows_before(3) == 7


def test_unknown_bounds_straddle_every_time_and_are_never_landed_on() -> None:
    ranges = [IdRange(0, 10, None, at(9)), IdRange(1, 10, at(10), at(19))]
    landing = land(ranges, False, 15)
    assert landing is not None and landing.at == at(10) and landing.straddling == ()
    assert land([IdRange(0, 10, None, None)], False, 5) is None
    assert land([IdRange(0, 10, at(0), None), IdRange(1, 10, at(10), at(19))],
                False, 15) is None  # range 0 straddles minute 10 and may reach any time


def test_too_many_straddling_rows_leave_the_page_to_be_skipped_to() -> None:
    ranges = [IdRange(r, 100, at(0), at(1000)) for r in range(5)] + \
        [IdRange(5, 100, at(500), at(600))]
    landing = land(ranges, False, 550, limit=1000)
    assert landing is not None and landing.at == at(500) and len(landing.straddling) == 5
    assert land(ranges, False, 550, limit=499) is None
    # before the sixth range starts, the page is skipped to from the first time
    early = land(ranges, False, 450, limit=499)
    assert early is not None and (early.at, early.rows_before(0)) == (at(0), 0)


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("descending", [False, True])
def test_the_rows_before_the_time_are_told_exactly_and_never_past_the_page(
        seed: int, descending: bool) -> None:
    """Rows of random ranges, overlapping or not: for every skip, the rows before the
    landing's time (in the order read) are those it tells, at most ``skip``, and the
    straddling ranges' rows past ``until`` are none."""
    rng = random.Random(seed)
    rows: dict[int, list[int]] = {}
    minute = 0
    for r in range(rng.randrange(1, 8)):
        minute += rng.randrange(0, 30)
        spread = rng.choice([0, 5, 40, 300])
        rows[r] = [minute + rng.randrange(-spread, spread + 1)
                   for _ in range(rng.randrange(0, 12))]
    ranges = ranges_of(rows)
    total = sum(r.violations for r in ranges)
    for skip in range(total):
        landing = land(ranges, descending, skip)
        assert landing is not None
        times = {r: [at(m) for m in ms] for r, ms in rows.items()}
        straddling_from = sum(1 for r in landing.straddling for t in times[r]
                              if not _read_before(t, landing.at, descending))
        assert not any(_read_before(landing.until, t, descending)
                       for r in landing.straddling for t in times[r])
        exact = sum(1 for ts in times.values() for t in ts
                    if _read_before(t, landing.at, descending))
        assert landing.rows_before(straddling_from) == exact <= skip


def _read_before(t: datetime, other: datetime, descending: bool) -> bool:
    return t > other if descending else t < other
