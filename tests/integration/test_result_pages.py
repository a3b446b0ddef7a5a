"""Reading a page of a result list: nothing is left behind on the pool's connections, and
pages by number start where the kept counts tell."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from gavel import compliance, result_pages, result_queries
from gavel.db import pool_context
from gavel.orgs import create_org
from gavel.settings import Settings
from tests.result_seed import BASE_TIME, Current, Evaluation, Violation, seed


async def test_a_page_is_planned_for_its_values_without_changing_the_connection(
        settings: Settings) -> None:
    one_connection = settings.database.model_copy(update={"pool_min": 1, "pool_max": 1})
    async with pool_context(one_connection) as pool:
        org_id, _ = await create_org(pool, f"org-{uuid.uuid4().hex[:8]}")
        try:
            query = result_queries.violation_query(org_id, {"group": "shared"}, ())
            for _ in range(8):  # past the runs after which a generic plan may be chosen
                page = await result_pages.fetch_page(pool, query, 0, 10)
                assert page.rows == [] and page.total == 0
            async with pool.acquire() as conn:
                assert await conn.fetchval("SHOW plan_cache_mode") == "auto"
                assert not conn.is_in_transaction()
        finally:
            await pool.execute("DELETE FROM orgs WHERE id = $1", org_id)


def _evaluation(entity: int, violations: int, minute: int | None = None) -> Evaluation:
    entity_type, key = ("account", f"acct-{entity}") if entity % 4 == 0 else \
        ("stack", f"proj/stack-{entity}")
    at = BASE_TIME + timedelta(minutes=entity if minute is None else minute)
    return Evaluation(entity_type, key, at, [
        Violation(f"pack-{v % 2}", f"rule-{v % 3}",
                  "mandatory" if (entity + v) % 3 == 0 else "advisory",
                  ["prod", "shared"] if entity % 3 == 0 else ["prod"])
        for v in range(violations)])


async def test_pages_by_number_of_the_id_order_start_at_their_range_of_ids(
        pool: asyncpg.Pool) -> None:
    """Pages by number in the default order (by id), or by level then id, are read from
    the range of ids that holds them (``violation_id_range_counts``), from either end of
    the list: ids spread over several ranges, unevenly, give every page of the order,
    with each filter the range counts are kept by and one they are not (pack)."""
    org_id, _ = await create_org(pool, f"org-{uuid.uuid4().hex[:8]}")
    try:
        current: list[Current] = []
        for batch, per_entity in enumerate((7, 1, 25, 3)):
            current += await seed(pool, org_id, [
                _evaluation(batch * 10 + entity, per_entity + entity % 4)
                for entity in range(10)])
            # the next batch's ids lie one or two ranges further on
            await pool.execute("SELECT setval('violations_id_seq', nextval('violations_id_seq')"
                               " + $1)", (batch % 2 + 1) << compliance.ID_RANGE_BITS)
        ranges = {c.id >> compliance.ID_RANGE_BITS for c in current}
        assert len(ranges) >= 4
        for filters, sort in (({}, ()), ({"group": "shared"}, ()), ({"level": "mandatory"}, ()),
                              ({"entityType": "account", "group": "prod"}, ()),
                              ({"pack": "pack-1"}, ()), ({}, (("level", False),)),
                              ({"group": "shared"}, (("level", True),)),
                              ({"level": "advisory"}, (("level", True),)),
                              ({"pack": "pack-0"}, (("level", True),))):
            query = result_queries.violation_query(org_id, filters, sort)
            expected = [c.id for c in sorted(
                (c for c in current if _matches(c, filters)),
                key=lambda c: (c.violation.level, c.id) if sort else (c.id,),
                reverse=bool(sort) and sort[0][1])]
            await _assert_every_page(pool, query, expected, filters, sort)
    finally:
        await pool.execute("DELETE FROM orgs WHERE id = $1", org_id)


async def _assert_every_page(pool: asyncpg.Pool, query: result_queries.PagedQuery,
                             expected: list[int], *label: Any) -> None:
    """Every page by number, of two sizes, holds the expected ids, with the exact total."""
    for size in (7, 40):
        for offset in range(0, len(expected) + size, size):
            page = await result_pages.fetch_page(pool, query, offset, size)
            assert [r["violation_id"] for r in page.rows] == \
                expected[offset:offset + size], (*label, size, offset)
            assert page.total == len(expected)


def _matches(c: Current, filters: dict[str, str]) -> bool:
    e, v = c.evaluation, c.violation
    return all({"group": value in v.groups, "level": v.level == value,
                "entityType": e.entity_type == value, "pack": v.pack == value}[name]
               for name, value in filters.items())


def _minute(entity: int, layout: str, rng: random.Random) -> int:
    """When an entity's evaluation is stored: rising with the ids as the worker stores
    them, some a while before the entity stored just before (overlapping transactions,
    across the ranges of ids too) and some at the same time; or at random."""
    if layout == "random":
        return rng.randrange(1000)
    return entity - (25 if entity % 3 == 1 else 0) - (1 if entity % 5 == 0 else 0)


@pytest.mark.parametrize("layout", ["rising", "random"])
async def test_pages_by_number_sorted_by_observed_at_start_at_their_time(
        pool: asyncpg.Pool, layout: str) -> None:
    """Pages by number sorted by observedAt (alone or after the level) start at a time
    that the ranges of ids place (``gavel.observed_landing``), from either end of the
    list: with times rising with the ids but for some overlap, or at random (many ranges
    straddle every time), every page of every such order is the one expected, with each
    filter the range counts are kept by and one they are not (pack)."""
    org_id, _ = await create_org(pool, f"org-{uuid.uuid4().hex[:8]}")
    rng = random.Random(layout)
    try:
        current: list[Current] = []
        for batch, per_entity in enumerate((7, 1, 25, 3)):
            entities = [batch * 10 + entity for entity in range(10)]
            current += await seed(pool, org_id, [
                _evaluation(e, per_entity + e % 4, _minute(e, layout, rng)) for e in entities])
            await pool.execute("SELECT setval('violations_id_seq', nextval('violations_id_seq')"
                               " + $1)", (batch % 2 + 1) << compliance.ID_RANGE_BITS)
        observed = await pool.fetch("SELECT violation_id, observed_at FROM current_violations"
                                    " WHERE org_id = $1", org_id)
        at = {r["violation_id"]: r["observed_at"] for r in observed}
        for filters, sort in (
                ({}, (("observedAt", False),)), ({}, (("observedAt", True),)),
                ({"group": "shared"}, (("observedAt", False),)),
                ({"level": "mandatory"}, (("observedAt", True),)),
                ({"entityType": "account", "group": "prod"}, (("observedAt", False),)),
                ({"pack": "pack-1"}, (("observedAt", False),)),
                ({}, (("level", True), ("observedAt", False))),
                ({}, (("level", False), ("observedAt", True))),
                ({"group": "shared"}, (("level", True), ("observedAt", True))),
                ({"level": "advisory"}, (("level", False), ("observedAt", False)))):
            query = result_queries.violation_query(org_id, filters, sort)
            by_time = sorted((c for c in current if _matches(c, filters)),
                             key=lambda c: (at[c.id], c.id), reverse=sort[-1][1])
            expected = [c.id for c in sorted(by_time, key=lambda c: c.violation.level,
                                             reverse=sort[0][1])] if len(sort) > 1 else \
                [c.id for c in by_time]
            await _assert_every_page(pool, query, expected, filters, sort)
    finally:
        await pool.execute("DELETE FROM orgs WHERE id = $1", org_id)


# sort key -> the value it orders a current violation by
def _sort_values(at: dict[int, Any]) -> dict[str, Any]:
    return {"entity": lambda c: (c.evaluation.entity_type, c.evaluation.entity_key),
            "level": lambda c: c.violation.level, "pack": lambda c: c.violation.pack,
            "observedAt": lambda c: at[c.id]}


def _in_order(current: list[Current], sort: tuple[tuple[str, bool], ...],
              at: dict[int, Any]) -> list[int]:
    """The ids in the sort's order: stable sorts from the last key to the first, after
    the id (in the last key's direction)."""
    ordered = sorted(current, key=lambda c: c.id, reverse=sort[-1][1])
    for name, descending in reversed(sort):
        ordered.sort(key=_sort_values(at)[name], reverse=descending)
    return [c.id for c in ordered]


@pytest.mark.parametrize("block_rows", [1, 9, 60, 10_000])
async def test_pages_by_number_sorted_by_entity_start_at_their_block(
        pool: asyncpg.Pool, block_rows: int) -> None:
    """Pages by number of a sort led by entity (or by level, then entity) start at the
    block of entities that holds them (``gavel.entity_blocks``), from either end of the
    list: with blocks of one entity, of a few, of many and one block, every page of
    every such order is the one expected, with each filter the block counts are kept by
    (blocks without a row of the filter's among them) and one they are not (pack)."""
    org_id, _ = await create_org(pool, f"org-{uuid.uuid4().hex[:8]}")
    try:
        current = await seed(pool, org_id, [_evaluation(e, 1 + (e * 7) % 12, e % 9)
                                            for e in range(40)], block_rows=block_rows)
        blocks = await pool.fetchval("SELECT count(*) FROM entity_blocks WHERE org_id = $1",
                                     org_id)
        assert (blocks > 0) == (block_rows < len(current))
        observed = await pool.fetch("SELECT violation_id, observed_at FROM current_violations"
                                    " WHERE org_id = $1", org_id)
        at = {r["violation_id"]: r["observed_at"] for r in observed}
        for filters, sort in (
                ({}, (("entity", False),)), ({}, (("entity", True),)),
                ({"group": "shared"}, (("entity", False), ("observedAt", True))),
                ({"level": "mandatory"}, (("entity", True), ("pack", False))),
                ({"entityType": "account", "group": "prod"}, (("entity", True),)),
                ({"entityType": "stack"}, (("entity", False), ("observedAt", False))),
                ({"pack": "pack-1"}, (("entity", False),)),
                ({}, (("level", False), ("entity", False))),
                ({"group": "shared"}, (("level", True), ("entity", True),
                                       ("observedAt", False))),
                ({"level": "advisory"}, (("level", True), ("entity", False)))):
            query = result_queries.violation_query(org_id, filters, sort)
            expected = _in_order([c for c in current if _matches(c, filters)], sort, at)
            await _assert_every_page(pool, query, expected, filters, sort)
    finally:
        await pool.execute("DELETE FROM orgs WHERE id = $1", org_id)
