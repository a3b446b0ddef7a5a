"""Decode and validate one Kafka message into a stack or account event."""

from __future__ import annotations

import orjson
from pydantic import ValidationError

from gavel.events import AccountEvent, StackEvent


class BadEvent(ValueError):
    """The message cannot be decoded or fails validation; it goes to the dead letters."""


def decode(value: bytes | None, is_account: bool) -> StackEvent | AccountEvent:
    if not value:
        raise BadEvent("empty message value")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise BadEvent(f"value is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadEvent("value is not a JSON object")
    model = AccountEvent if is_account else StackEvent
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "value"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise BadEvent(f"{field}: {first['msg']}{more}") from None
