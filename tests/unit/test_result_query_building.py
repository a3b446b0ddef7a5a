"""Query parameters of the result lists and the SQL built from them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import make_mocked_request

from api.errors import BadRequest
from api.handlers import results
from api.query_params import SortKey, check_known, parse_filters, parse_sort
from gavel import result_queries


def request(query: str):  # type: ignore[no-untyped-def]
    return make_mocked_request("GET", f"/api/orgs/acme/violations?{query}")


def test_every_accepted_filter_has_its_sql() -> None:
    assert set(results.VIOLATION_FILTERS) == set(result_queries.VIOLATION_FILTERS)
    assert set(results.EVALUATION_FILTERS) == {*result_queries.EVALUATION_FILTERS, "blocking"}


def test_filters_are_parsed() -> None:
    found = parse_filters(request("filter[level]=mandatory&filter[entity]=web/prod"),
                          results.VIOLATION_FILTERS)
    assert found == {"level": "mandatory", "entity": "web/prod"}
    since = parse_filters(request("filter[since]=2025-01-31T12:00:00Z&filter[blocking]=false"),
                          results.EVALUATION_FILTERS)
    assert since["since"].isoformat() == "2025-01-31T12:00:00+00:00"
    assert since["blocking"] is False


@pytest.mark.parametrize(("query", "message"), [
    ("filter[level]=low", "filter[level]: must be one of advisory, mandatory"),
    ("filter[pack]=" + "x" * 1001, "filter[pack]: must be at most 1000 characters"),
    ("filter[urn]=a%00b", "filter[urn]: NUL characters are not allowed"),
])
def test_bad_filter_values_name_the_parameter(query: str, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_filters(request(query), results.VIOLATION_FILTERS)
    assert caught.value.message == message


def test_unknown_parameters_are_named() -> None:
    with pytest.raises(BadRequest, match=r"unknown query parameter filter\[lvl\], wait"):
        check_known(request("filter[lvl]=x&wait=1&page[size]=5"), results.VIOLATION_FILTERS,
                    sortable=True)
    check_known(request("filter[level]=advisory&sort=-level&page[number]=2"),
                results.VIOLATION_FILTERS, sortable=True)


def test_sort_keys() -> None:
    sorts = result_queries.VIOLATION_SORTS
    assert parse_sort(request(""), sorts) == ()
    assert parse_sort(request("sort=-level,observedAt"), sorts) == (
        SortKey("level", True), SortKey("observedAt", False))
    with pytest.raises(BadRequest, match="sort: unknown key 'colour'"):
        parse_sort(request("sort=level,colour"), sorts)


def test_order_ends_with_the_id_in_the_last_keys_direction() -> None:
    def order(sort: tuple[tuple[str, bool], ...]) -> str:
        return result_queries.violation_order(sort).sql

    assert order(()) == "violation_id ASC"
    assert order((("level", True),)) == "level DESC, violation_id DESC"
    assert order((("level", True), ("entity", False))) == (
        "level DESC, entity_type ASC, entity_key ASC, violation_id ASC")


def test_values_are_bound_never_written_into_the_sql() -> None:
    hostile = "x' OR '1'='1"
    query = result_queries.violation_query(
        7, {"pack": hostile, "entity": "web/prod", "group": hostile}, (("pack", False),))
    page_sql, params = query.page(100, 200)
    assert hostile not in page_sql and hostile not in query.count_sql
    assert query.params == (7, hostile, "stack", "web/prod", hostile)
    assert params == (*query.params, 100, 200)
    assert "entity_type = $3 AND entity_key = $4" in page_sql
    assert "LIMIT $6 OFFSET $7" in page_sql
    assert query.count_sql.endswith("LIMIT $6) AS capped")
    seek_sql, seek_params = query.page(100, seek=result_queries.Seek((hostile, 41)))
    assert hostile not in seek_sql and "(pack, violation_id) > ($6, $7)" in seek_sql
    assert seek_params == (*query.params, hostile, 41, 100, 0)


def test_blocking_is_a_fixed_condition() -> None:
    query = result_queries.evaluation_query(7, {"blocking": True, "kind": "update"})
    assert "kind = $2 AND blocking" in query.page(10)[0] and query.params == (7, "update")


def test_a_level_led_sort_reads_one_branch_per_level_in_its_order() -> None:
    query = result_queries.violation_query(7, {}, (("level", True), ("observedAt", False)))
    sql, _ = query.page(100)
    assert sql.index("level = 'mandatory'") < sql.index("level = 'advisory'")
    assert "UNION ALL" in sql
    # past a mandatory row: the rest of the mandatory branch, then every advisory row
    key = ("mandatory", datetime(2025, 1, 1, tzinfo=UTC), 5)
    sql, params = query.page(100, seek=result_queries.Seek(key))
    assert "level = 'mandatory' AND (observed_at, violation_id) > ($3, $4)" in sql
    assert params == (7, 100, *key[1:])
    # past an advisory row, only advisory rows remain
    sql, _ = query.page(100, seek=result_queries.Seek(("advisory", *key[1:])))
    assert "mandatory" not in sql
    # before a mandatory row (read backwards): nothing of the advisory branch
    sql, _ = query.page(100, seek=result_queries.Seek(key, before=True))
    assert "advisory" not in sql and "(observed_at, violation_id) < ($3, $4)" in sql
    # a page past the first skips in the branch it starts in: what the branches before
    # it hold is counted
    sql, params = query.page(100, 300)
    assert "OFFSET greatest(0, $3 - (SELECT count(*) FROM current_violations WHERE " \
           "org_id = $1 AND level IN ('mandatory')))" in sql
    assert params == (7, 100, 300)


def test_level_alone_or_after_another_key_is_one_index_range() -> None:
    for sort in ((("level", True),), (("pack", False), ("level", True))):
        sql, _ = result_queries.violation_query(7, {}, sort).page(100)
        assert "UNION ALL" not in sql


def test_a_filter_on_the_leading_column_leaves_one_branch() -> None:
    sort = (("level", True), ("observedAt", False))
    sql, _ = result_queries.violation_query(7, {"level": "advisory"}, sort).page(100)
    assert "level = 'advisory'" in sql and "level = 'mandatory'" not in sql
    by_entity = result_queries.violation_query(7, {"entity": "acct-1"}, (("entity", False),))
    sql, _ = by_entity.page(100)
    assert "entity_type = 'account'" in sql and "entity_type = 'stack'" not in sql
    # a key outside what the filter allows continues to nothing
    sql, _ = by_entity.page(100, seek=result_queries.Seek(("stack", "web/prod", 3)))
    assert "WHERE false" in sql


def test_a_pack_led_sort_lists_the_orgs_packs_then_reads_one_branch_each() -> None:
    query = result_queries.violation_query(7, {"level": "advisory"},
                                           (("pack", True), ("observedAt", False)))
    values_sql, params = query.listed_values_sql(0, None) or ("", ())
    assert "WITH RECURSIVE" in values_sql and params == (7,)
    assert "ORDER BY pack DESC LIMIT 1" in values_sql and "pack < lead_values.value" in values_sql
    hostile = "x' OR '1'='1"
    sql, params = query.page(100, listed=["tagging", hostile])
    assert hostile not in sql and "UNION ALL" in sql
    assert "level = $2 AND pack = $4" in sql and "AND pack = $5" in sql
    assert params == (7, "advisory", 100, "tagging", hostile)
    # past a row, the list starts at its pack (the packs before are done) and the seek
    # applies in that pack's branch only
    key = ("tagging", datetime(2025, 1, 1, tzinfo=UTC), 5)
    values_sql, params = query.listed_values_sql(0, result_queries.Seek(key)) or ("", ())
    assert "AND pack <= $2" in values_sql and params == (7, "tagging")
    sql, params = query.page(100, seek=result_queries.Seek(key), listed=["tagging", "base"])
    assert "pack = $4 AND (observed_at, violation_id) > ($6, $7)" in sql
    assert "pack = $5\n" in sql and params == (7, "advisory", 100, "tagging", "base", *key[1:])
    # read backwards, the packs come in the other direction
    values_sql, _ = query.listed_values_sql(0, result_queries.Seek(key, before=True)) or ("",)
    assert "pack >= $2" in values_sql and "ORDER BY pack ASC" in values_sql


def test_pack_led_sorts_that_are_not_listed() -> None:
    def listed(filters: dict[str, str], sort: tuple[tuple[str, bool], ...], offset: int = 0,
               seek: result_queries.Seek | None = None) -> bool:
        query = result_queries.violation_query(7, filters, sort)
        return query.listed_values_sql(offset, seek) is not None

    two_keys = (("pack", False), ("policy", False))
    assert listed({}, two_keys) and listed({}, two_keys, 300, result_queries.Seek.end())
    assert not listed({}, (("pack", False),))  # one range of the pack index
    assert not listed({"pack": "base"}, two_keys)  # one range of (org, pack, policy, id)
    assert not listed({}, two_keys, 300)  # by number: one range, skipped by OFFSET
    assert not listed({}, (("policy", False), ("pack", False)))
    # no index on (org, pack, key, id) for these: each branch would sort its pack's rows
    assert not listed({}, (("pack", False), ("entity", False)))
    assert not listed({}, (("pack", True), ("level", False)))
    assert not listed({}, (("pack", False), ("policy", False), ("observedAt", True)))


def test_only_a_group_filter_is_planned_for_its_values() -> None:
    assert result_queries.violation_query(7, {"group": "shared"}, ()).planned_for_values
    for filters in ({}, {"pack": "base", "level": "advisory"}):
        assert not result_queries.violation_query(7, filters, ()).planned_for_values
    assert not result_queries.evaluation_query(7, {"kind": "update"}).planned_for_values
