"""``filter[...]`` and ``sort`` of our paged lists, checked against what each list takes.

A list declares its filters (name -> parser) and its sort keys. Any other query
parameter, a repeated one, or a value a parser refuses answers 400 naming the
parameter: a mistyped filter must not silently widen the result.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from aiohttp import web

from api.errors import BadRequest
from api.paging import AFTER, BEFORE, single_value
from gavel.entity_names import name_problem

# A parser turns the raw text into a value or raises ValueError("must be ...").
Parser = Callable[[str], Any]

PAGING = frozenset({"page[number]", "page[size]"})
CONTINUATIONS = frozenset({AFTER, BEFORE})
MAX_TEXT = 1000


def one_of(*allowed: str) -> Parser:
    def parse(raw: str) -> str:
        if raw not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return raw

    return parse


def boolean(raw: str) -> bool:
    if raw not in ("true", "false"):
        raise ValueError("must be true or false")
    return raw == "true"


def timestamp(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError("must be an RFC 3339 time such as 2025-01-31T12:00:00Z") from None
    if value.tzinfo is None:
        raise ValueError("must be an RFC 3339 time with a time zone (Z or +hh:mm)")
    return value


def uuid_text(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ValueError("must be a UUID") from None


def text(raw: str) -> str:
    if not raw:
        raise ValueError("must not be empty")
    if len(raw) > MAX_TEXT:
        raise ValueError(f"must be at most {MAX_TEXT} characters")
    if "\x00" in raw:
        raise ValueError("NUL characters are not allowed")
    return raw


def entity(raw: str) -> str:
    """A stack as ``project/stack`` or an account by its name: what no entity can be
    named would match nothing, so it is refused rather than answered empty."""
    parts = raw.split("/")
    if len(parts) > 2 or any(name_problem(part) for part in parts):
        raise ValueError("must be a stack as project/stack or an account's name, each "
                         "name 1 to 100 letters, digits, '-', '_' or '.'")
    return raw


class SortKey(NamedTuple):
    name: str
    descending: bool = False


def check_known(request: web.Request, filters: Collection[str], sortable: bool,
                continuable: bool = False) -> None:
    """Refuse query parameters the list does not take, naming them. A continuable list
    also takes the tokens of its ``next`` and ``prev`` links."""
    refuse_unknown(request, PAGING | {f"filter[{name}]" for name in filters}
                   | ({"sort"} if sortable else set())
                   | (CONTINUATIONS if continuable else set()))


def refuse_unknown(request: web.Request, known: Collection[str]) -> None:
    """400 naming the query parameters that are not ``known``."""
    unknown = sorted({key for key in request.query if key not in known})
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise BadRequest(f"unknown query parameter {', '.join(unknown)}; allowed: {allowed}")


def parse_filters(request: web.Request, parsers: Mapping[str, Parser]) -> dict[str, Any]:
    """The given filters, parsed: ``{"level": "mandatory", ...}``."""
    found: dict[str, Any] = {}
    for name, parse in parsers.items():
        key = f"filter[{name}]"
        raw = single_value(request, key)
        if raw is None:
            continue
        try:
            found[name] = parse(raw)
        except ValueError as exc:
            raise BadRequest(f"{key}: {exc}") from None
    return found


def parse_sort(request: web.Request, allowed: Collection[str],
               default: tuple[SortKey, ...] = ()) -> tuple[SortKey, ...]:
    """``sort=level,-observedAt``: keys in order, ``-`` meaning descending."""
    raw = single_value(request, "sort")
    if raw is None:
        return default
    keys: list[SortKey] = []
    for part in raw.split(","):
        name = part.removeprefix("-")
        if name not in allowed:
            raise BadRequest(f"sort: unknown key {name[:50]!r}; "
                             f"allowed: {', '.join(allowed)} (prefix - for descending)")
        if any(k.name == name for k in keys):
            raise BadRequest(f"sort: key {name!r} given more than once")
        keys.append(SortKey(name, part.startswith("-")))
    return tuple(keys)
