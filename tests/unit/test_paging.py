"""Links and meta.page of a page, by its number or read backwards."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from aiohttp.test_utils import make_mocked_request

from api.paging import Page, last_number, paging_fields

TOKENS = {"next": "n", "prev": "p", "last": "e"}


def fields(page: Page, total: int, rows_before: bool | None = None) -> dict:  # type: ignore[type-arg]
    request = make_mocked_request("GET", "/api/orgs/acme/violations?sort=pack")
    return paging_fields(request, page, total, TOKENS, rows_before)


def query(link: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(link).query)


def test_the_last_number_of_a_total() -> None:
    assert [last_number(t, 100) for t in (0, 1, 100, 101, 1000)] == [0, 0, 0, 1, 9]


def test_the_last_link_carries_the_end_token_and_the_last_number() -> None:
    links = fields(Page(0, 100), 1234)["links"]
    assert query(links["last"]) == {"sort": ["pack"], "page[number]": ["12"],
                                    "page[size]": ["100"], "page[before]": ["e"]}
    assert query(links["next"])["page[after]"] == ["n"]
    assert "page[before]" not in query(links["first"])


def test_by_number_prev_follows_the_position() -> None:
    assert fields(Page(0, 100), 1234)["meta"]["page"]["prev_number"] is None
    assert fields(Page(3, 100), 1234)["meta"]["page"]["prev_number"] == 2
    assert fields(Page(14, 100), 1234)["links"]["prev"] is None  # past the end


def test_read_backwards_prev_is_offered_exactly_while_rows_precede() -> None:
    start = fields(Page(4, 100), 1234, rows_before=False)
    assert start["meta"]["page"]["prev_number"] is None and start["links"]["prev"] is None
    middle = fields(Page(4, 100), 1234, rows_before=True)
    assert middle["meta"]["page"]["prev_number"] == 3
    assert query(middle["links"]["prev"])["page[number]"] == ["3"]
    # numbered from too low an estimate: rows before page 0 are on page 0 again
    under = fields(Page(0, 100), 1234, rows_before=True)
    assert under["meta"]["page"]["prev_number"] == 0
    assert query(under["links"]["prev"]) == {"sort": ["pack"], "page[number]": ["0"],
                                             "page[size]": ["100"], "page[before]": ["p"]}
