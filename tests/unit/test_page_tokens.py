"""Continuation tokens: what they carry, and every way a wrong one is refused."""

from __future__ import annotations

import base64

import pytest
from aiohttp.test_utils import make_mocked_request

from api.errors import BadRequest
from api.page_tokens import (
    AFTER,
    BEFORE,
    Continuation,
    ListIdentity,
    encode,
    requested_continuation,
)
from api.paging import Page

IDENTITY = ListIdentity.of("violations", (("level", True), ("observedAt", False)),
                           {"pack": "baseline"})
KEY = ["mandatory", "2025-06-01T00:00:00+00:00", 42]


PAGE = Page(3, 100)


def continuation(query: str, page: Page = PAGE,
                 identity: ListIdentity = IDENTITY) -> Continuation | None:
    request = make_mocked_request("GET", f"/api/orgs/acme/violations?{query}")
    return requested_continuation(request, page, identity)


def refused(query: str, page: Page = PAGE,
            identity: ListIdentity = IDENTITY) -> str:
    with pytest.raises(BadRequest) as caught:
        continuation(query, page, identity)
    return caught.value.message


def test_a_token_carries_its_position_and_key() -> None:
    after = continuation(f"page[after]={encode(IDENTITY, AFTER, 300, KEY)}")
    assert after is not None
    assert (after.position, after.key, after.before) == (300, KEY, False)
    before = continuation(f"page[before]={encode(IDENTITY, BEFORE, 400, KEY)}")
    assert before is not None
    assert (before.position, before.before) == (400, True)
    assert continuation("page[number]=3") is None


def test_filters_are_told_by_value_not_by_order() -> None:
    one = ListIdentity.of("violations", (), {"pack": "a", "level": "advisory"})
    two = ListIdentity.of("violations", (), {"level": "advisory", "pack": "a"})
    assert one == two != ListIdentity.of("violations", (), {"pack": "a"})


def _tampered(token: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[-3] ^= 1  # a digit of the id
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@pytest.mark.parametrize(("token", "message"), [
    ("", "page[after]: not a token from this list's links"),
    ("not-base64!", "page[after]: not a token from this list's links"),
    ("abc", "page[after]: not a token from this list's links"),
    (base64.urlsafe_b64encode(b"x" * 8 + b"[1]").decode().rstrip("="),
     "page[after]: the token is damaged or was altered"),
    (_tampered(encode(IDENTITY, AFTER, 300, KEY)),
     "page[after]: the token is damaged or was altered"),
    (encode(IDENTITY, AFTER, 300, KEY)[:-2], "page[after]:"),
    ("x" * 9000, "page[after]: not a token from this list's links"),
])
def test_bad_or_altered_tokens_are_refused(token: str, message: str) -> None:
    assert refused(f"page[after]={token}").startswith(message)


def test_a_token_of_another_sort_filter_list_or_side_is_refused() -> None:
    other_sort = ListIdentity.of("violations", (("pack", False),), {"pack": "baseline"})
    assert refused(f"page[after]={encode(other_sort, AFTER, 300, KEY)}") == (
        "page[after]: the token was made for sort=pack, not sort=-level,observedAt")
    default = ListIdentity.of("violations", (), {"pack": "baseline"})
    assert refused(f"page[after]={encode(default, AFTER, 300, KEY)}") == (
        "page[after]: the token was made for sort=(default), not sort=-level,observedAt")
    other_filters = ListIdentity.of("violations", (("level", True), ("observedAt", False)), {})
    assert refused(f"page[after]={encode(other_filters, AFTER, 300, KEY)}") == (
        "page[after]: the token was made for other filters")
    evaluations = ListIdentity.of("evaluations", (), {})
    assert refused(f"page[after]={encode(evaluations, AFTER, 300, KEY)}",
                   identity=ListIdentity.of("violations", (), {})) == (
        "page[after]: the token belongs to another list (evaluations)")
    assert refused(f"page[before]={encode(IDENTITY, AFTER, 400, KEY)}") == (
        "page[before]: the token was made for page[after]")


def test_a_token_belongs_to_one_page_number_and_size() -> None:
    token = encode(IDENTITY, AFTER, 300, KEY)
    assert refused(f"page[after]={token}", Page(4, 100)) == (
        "page[after]: the token continues at row 300, not at page[number]=4 with "
        "page[size]=100 (row 400)")
    assert refused(f"page[after]={token}", Page(3, 50)).startswith(
        "page[after]: the token continues at row 300")


def test_one_token_at_a_time() -> None:
    token = encode(IDENTITY, AFTER, 300, KEY)
    assert refused(f"page[after]={token}&page[after]={token}") == (
        "page[after]: given more than once")
    assert refused(f"page[after]={token}&page[before]={token}") == (
        "page[before]: cannot be combined with page[after]")


def test_the_end_of_the_list_is_a_before_token_without_a_key() -> None:
    end = continuation(f"page[before]={encode(IDENTITY, BEFORE, 400, [])}")
    assert end is not None
    assert (end.position, end.key, end.before) == (400, [], True)
