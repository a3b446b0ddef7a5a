"""Request bodies and responses: orjson, pydantic validation, errors that name the field."""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from api.errors import BadRequest

M = TypeVar("M")


class Body(BaseModel):
    """Base of every request body: unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, content_type="application/json",
                        body=orjson.dumps(data))


def describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "body"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        parts.append(f"{field}: {message}")
    return "invalid request body: " + "; ".join(parts)


async def read_json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        raise BadRequest("request body is required")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None


@cache
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


async def parse_body(request: web.Request, model: type[M] | Any) -> M:
    data = await read_json(request)
    try:
        return _adapter(model).validate_python(data)
    except ValidationError as exc:
        raise BadRequest(describe(exc)) from None
