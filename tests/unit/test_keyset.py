"""Keyset conditions: which rows sort after a key, for every mix of directions."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from gavel import keyset
from gavel.keyset import Column, Order


def _bind(params: list[Any]):  # type: ignore[no-untyped-def]
    def bind(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    return bind


def _columns(*directions: bool) -> list[Column]:
    return [Column(f"c{i}", desc, keyset.bigint) for i, desc in enumerate(directions)]


def test_one_direction_is_a_row_comparison() -> None:
    params: list[Any] = []
    assert keyset.seek_after(_columns(False, False), (3, 9), _bind(params)) == (
        "(c0, c1) > ($1, $2)")
    assert keyset.seek_after(_columns(True), (3,), _bind([])) == "c0 < $1"
    assert params == [3, 9]


def test_mixed_directions_nest_runs_led_by_an_index_bound() -> None:
    condition = keyset.seek_after(_columns(True, False, False), (1, 2, 3), _bind([]))
    assert condition == "c0 <= $1 AND (c0 < $1 OR (c0 = $1 AND (c1, c2) > ($2, $3)))"


def _evaluate(condition: str, row: tuple[int, ...], key: tuple[int, ...]) -> bool:
    """The condition in Python: columns and parameters replaced by values."""
    text = condition
    for i, value in reversed(list(enumerate(key))):
        text = text.replace(f"${i + 1}", str(value))
    for i, value in reversed(list(enumerate(row))):
        text = text.replace(f"c{i}", str(value))
    text = text.replace(" = ", " == ").replace("<==", "<=").replace(">==", ">=")
    return bool(eval(text.replace("AND", "and").replace("OR", "or")))


@pytest.mark.parametrize("directions", list(itertools.product((False, True), repeat=3)))
def test_the_rows_after_a_key_are_those_that_sort_after_it(directions: tuple[bool, ...]) -> None:
    rows = list(itertools.product(range(3), repeat=3))

    def sort_key(row: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(-v if desc else v for v, desc in zip(row, directions, strict=True))

    ordered = sorted(rows, key=sort_key)
    condition = keyset.seek_after(_columns(*directions), (0, 0, 0), _bind([]))
    for i, key in enumerate(ordered):
        after = [row for row in ordered if _evaluate(condition, row, key)]
        assert after == ordered[i + 1:]


def test_an_order_reverses_and_keys_travel_as_json() -> None:
    order = Order((Column("received_at", True, keyset.timestamp),
                   Column("id", False, keyset.uuid_text)))
    assert order.reversed().sql == "received_at ASC, id DESC"
    assert order.sql_on("t") == "t.received_at DESC, t.id ASC"
    at, id_ = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC), uuid.uuid4()
    key = order.key_of({"received_at": at, "id": id_})
    assert key == ["2025-06-01T12:00:00.123456+00:00", str(id_)]
    assert order.decode_key(key) == (at, id_)


@pytest.mark.parametrize("key", [
    None, [], ["2025-06-01T12:00:00+00:00"], "2025-06-01T12:00:00+00:00",
    ["2025-06-01T12:00:00", str(uuid.UUID(int=1))],
    ["2025-06-01 12:00:00+00:00", str(uuid.UUID(int=1))],
    ["2025-06-01T12:00:00+00:00", str(uuid.UUID("ab" * 16)).upper()],
    ["2025-06-01T12:00:00+00:00", 1],
    [1, str(uuid.UUID(int=1))],
])
def test_keys_are_decoded_strictly(key: Any) -> None:
    order = Order((Column("received_at", True, keyset.timestamp),
                   Column("id", False, keyset.uuid_text)))
    with pytest.raises(ValueError, match=r"must hold|holds"):
        order.decode_key(key)


@pytest.mark.parametrize(("decode", "value"), [
    (keyset.text(("advisory", "mandatory")), "fatal"), (keyset.text(), 3),
    (keyset.text(), "a\x00b"), (keyset.text(), "x" * 1001), (keyset.bigint, True),
    (keyset.bigint, 2**63), (keyset.bigint, "5"), (keyset.bigint, 1.5),
])
def test_values_outside_their_column_are_refused(decode: keyset.Decoder, value: Any) -> None:
    with pytest.raises(ValueError, match="holds"):
        decode(value)
