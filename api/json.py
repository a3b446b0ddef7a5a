"""Request bodies and responses: orjson, pydantic validation, errors that name the field."""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from api.errors import BadRequest
from gavel.events import ResourceError

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
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, ResourceError):  # it knows which item and field
            field, message = f"{field}.{cause.path}", cause.problem
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        parts.append(f"{field}: {message}")
    return "invalid request body: " + "; ".join(parts)


async def read_json(request: web.Request) -> Any:
    """The body as JSON; oversize bodies, malformed JSON and NUL characters answer 400."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BadRequest(f"request body exceeds the limit of {request.client_max_size} "
                         "bytes") from None
    if not raw:
        raise BadRequest("request body is required")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    reject_nul(data)
    return data


def reject_nul(value: Any, where: str = "") -> None:
    """Postgres text and jsonb cannot hold NUL: refuse it up front, naming the field."""
    if isinstance(value, str):
        if "\x00" in value:
            raise BadRequest(f"{where or 'body'}: NUL characters are not allowed")
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_nul(str(key), where)
            reject_nul(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            reject_nul(item, f"{where}.{index}" if where else str(index))


@cache
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


async def parse_body(request: web.Request, model: type[M] | Any) -> M:
    data = await read_json(request)
    try:
        return _adapter(model).validate_python(data)
    except ValidationError as exc:
        raise BadRequest(describe(exc)) from None
