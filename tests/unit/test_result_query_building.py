"""Query parameters of the result lists and the SQL built from them."""

from __future__ import annotations

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
    order = result_queries.violation_order
    assert order(()) == "violation_id ASC"
    assert order((("level", True),)) == "level DESC, violation_id DESC"
    assert order((("level", True), ("entity", False))) == (
        "level DESC, entity_type ASC, entity_key ASC, violation_id ASC")


def test_values_are_bound_never_written_into_the_sql() -> None:
    hostile = "x' OR '1'='1"
    query = result_queries.violation_query(
        7, {"pack": hostile, "entity": "web/prod", "group": hostile}, (("pack", False),))
    assert hostile not in query.page_sql and hostile not in query.count_sql
    assert query.params == (7, hostile, "stack", "web/prod", hostile)
    assert "entity_type = $3 AND entity_key = $4" in query.page_sql
    assert "LIMIT $6 OFFSET $7" in query.page_sql
    assert query.count_sql.endswith("LIMIT $6) AS capped")


def test_blocking_is_a_fixed_condition() -> None:
    query = result_queries.evaluation_query(7, {"blocking": True, "kind": "update"})
    assert "kind = $2 AND blocking" in query.page_sql and query.params == (7, "update")
