"""JSON:API-style paging of our own lists: ``page[number]`` (from 0), ``page[size]``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from api.errors import BadRequest

DEFAULT_SIZE = 100
MAX_SIZE = 1000
# continuation tokens of the lists that take them (see api.page_tokens)
AFTER, BEFORE = "page[after]", "page[before]"


@dataclass(frozen=True)
class Page:
    number: int
    size: int

    @property
    def offset(self) -> int:
        return self.number * self.size


def single_value(request: web.Request, name: str) -> str | None:
    """The parameter's value, if given; given more than once it answers 400."""
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise BadRequest(f"{name}: given more than once")
    return values[0] if values else None


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = single_value(request, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name}: must be an integer (got {raw[:20]!r})") from None
    if not low <= value <= high:
        raise BadRequest(f"{name}: must be between {low} and {high} (got {value})")
    return value


def requested_page(request: web.Request) -> Page:
    return Page(number=_int_param(request, "page[number]", 0, 0, 10_000_000),
                size=_int_param(request, "page[size]", DEFAULT_SIZE, 1, MAX_SIZE))


def last_number(total: int, size: int) -> int:
    return max(0, (total - 1) // size)


def paging_fields(request: web.Request, page: Page, total: int,
                  continuations: Mapping[str, str | None] | None = None,
                  rows_before: bool | None = None) -> dict[str, Any]:
    """``links`` and ``meta.page`` as in the Datadog seed. A list that continues by sort
    key passes its tokens (``{"next": …, "prev": …, "last": …}``), which the ``next``
    link carries beside the page number as ``page[after]``, and ``prev`` and ``last`` as
    ``page[before]``. A page read backwards tells whether rows precede it
    (``rows_before``): then ``prev`` is offered exactly while they do, and stays at page
    0 if an estimated total numbered the pages too low."""
    last = last_number(total, page.size)
    next_number = page.number + 1 if page.number < last else None
    if rows_before is None:
        prev_number = page.number - 1 if 0 < page.number <= last + 1 else None
    else:
        prev_number = max(page.number - 1, 0) if rows_before else None
    tokens = continuations or {}
    given = {k: v for k, v in request.query.items() if k in (AFTER, BEFORE)}
    plain = {k: v for k, v in request.query.items() if k not in given}

    def link(number: int | None,
             continuation: Mapping[str, str | None] | None = None) -> str | None:
        if number is None:
            return None
        query = {**plain, "page[number]": str(number), "page[size]": str(page.size),
                 **{k: v for k, v in (continuation or {}).items() if v is not None}}
        return str(request.rel_url.with_query(query))

    return {
        "links": {"self": link(page.number, given), "first": link(0),
                  "last": link(last, {BEFORE: tokens.get("last")}),
                  "next": link(next_number, {AFTER: tokens.get("next")}),
                  "prev": link(prev_number, {BEFORE: tokens.get("prev")})},
        "meta": {"page": {"type": "number_size", "number": page.number, "size": page.size,
                          "total": total, "first_number": 0, "last_number": last,
                          "next_number": next_number, "prev_number": prev_number}},
    }
