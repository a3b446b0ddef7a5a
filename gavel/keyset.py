"""Keyset seeks: continuing an ordered list after (or before) a row's sort key instead
of skipping rows with OFFSET, so that a page deep in a list costs what the first does.

An order is a list of columns, each ascending or descending, that ends with a unique
id. The rows after a key are those that sort after it. When every column has the same
direction that is one row comparison, ``(a, b, id) > ($1, $2, $3)``, which Postgres
reads as an index range. Otherwise the columns split into runs of one direction and
the condition nests, ``run1 > v1 OR (run1 = v1 AND (run2 < v2 OR ...))``, led by
``run1 >= v1`` so that an index on the leading columns still bounds the scan.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

# A key value as it travels in JSON -> the value bound in SQL; ValueError if refused.
Decoder = Callable[[Any], Any]
# Binds a value as the next query parameter and answers its placeholder ("$4").
Bind = Callable[[Any], str]

MAX_TEXT = 1000
BIGINT = 2**63


@dataclass(frozen=True)
class Column:
    name: str
    descending: bool
    decode: Decoder

    def reversed(self) -> Column:
        return replace(self, descending=not self.descending)

    @property
    def sql(self) -> str:
        return f"{self.name} {'DESC' if self.descending else 'ASC'}"


@dataclass(frozen=True)
class Order:
    """An ORDER BY whose last column is unique, so every row has its own key."""

    columns: tuple[Column, ...]

    @property
    def sql(self) -> str:
        return ", ".join(c.sql for c in self.columns)

    def sql_on(self, alias: str) -> str:
        return ", ".join(f"{alias}.{c.sql}" for c in self.columns)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def reversed(self) -> Order:
        return Order(tuple(c.reversed() for c in self.columns))

    def without_first(self) -> Order:
        return Order(self.columns[1:])

    def key_of(self, row: Any) -> list[Any]:
        """The row's key as JSON values (times in ISO 8601, ids as text or numbers)."""
        return [_json_value(row[c.name]) for c in self.columns]

    def decode_key(self, values: Any) -> tuple[Any, ...]:
        if not isinstance(values, list) or len(values) != len(self.columns):
            raise ValueError(f"must hold {len(self.columns)} sort key values")
        return tuple(c.decode(v) for c, v in zip(self.columns, values, strict=True))


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def seek_after(columns: Sequence[Column], key: Sequence[Any], bind: Bind) -> str:
    """The condition matching the rows that sort after ``key`` in ``columns``' order."""
    if not columns:
        raise ValueError("an order needs at least one column")
    values = [bind(v) for v in key]
    runs: list[list[int]] = []
    for i, column in enumerate(columns):
        if runs and columns[runs[-1][0]].descending == column.descending:
            runs[-1].append(i)
        else:
            runs.append([i])

    def compare(run: list[int], op: str) -> str:
        names = [columns[i].name for i in run]
        bound = [values[i] for i in run]
        if len(run) == 1:
            return f"{names[0]} {op} {bound[0]}"
        return f"({', '.join(names)}) {op} ({', '.join(bound)})"

    def past(run: list[int], inclusive: bool = False) -> str:
        op = "<" if columns[run[0]].descending else ">"
        return compare(run, op + "=" if inclusive else op)

    condition = past(runs[-1])
    for run in reversed(runs[:-1]):
        condition = f"({past(run)} OR ({compare(run, '=')} AND {condition}))"
    if len(runs) > 1:
        condition = f"{past(runs[0], inclusive=True)} AND {condition}"
    return condition


def text(values: Sequence[str] | None = None) -> Decoder:
    def decode(value: Any) -> str:
        if not isinstance(value, str) or len(value) > MAX_TEXT or "\x00" in value:
            raise ValueError("holds a value that is not a valid text")
        if values is not None and value not in values:
            raise ValueError(f"holds {value[:50]!r}, not one of {', '.join(values)}")
        return value

    return decode


def timestamp(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None and parsed.isoformat() == value:
            return parsed
    raise ValueError("holds a value that is not a time with a time zone")


def bigint(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not -BIGINT <= value < BIGINT:
        raise ValueError("holds a value that is not a row id")
    return value


def uuid_text(value: Any) -> uuid.UUID:
    if isinstance(value, str):
        try:
            parsed = uuid.UUID(value)
        except ValueError:
            parsed = None
        if parsed is not None and str(parsed) == value:
            return parsed
    raise ValueError("holds a value that is not a UUID")
