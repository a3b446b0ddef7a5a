"""Parsing request bodies for the policy group, stack and account handlers.

On top of ``api.json.parse_body``: an oversize body answers 400 naming the limit,
and NUL characters are refused, because Postgres text and jsonb cannot hold them
(letting one through would fail the write instead of answering 400).
"""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from api.errors import BadRequest
from api.json import parse_body

M = TypeVar("M")


async def parse_checked(request: web.Request, model: type[M] | Any) -> M:
    try:
        body = await parse_body(request, model)
    except web.HTTPRequestEntityTooLarge:
        raise BadRequest(f"request body exceeds the limit of {request.client_max_size} "
                         "bytes") from None
    reject_nul(_plain(body))
    return body


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def reject_nul(value: Any, where: str = "") -> None:
    """Raise BadRequest naming the first field whose key or text contains NUL."""
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
