"""Maps the storage layer's refusals (``gavel.domain_errors``) onto API errors."""

from __future__ import annotations

import functools

from aiohttp import web
from aiohttp.typedefs import Handler

from api.errors import ApiError, BadRequest, Conflict, NotFound
from gavel.domain_errors import ConflictError, DomainError, InvalidError, NotFoundError

_API_ERRORS: dict[type[DomainError], type[ApiError]] = {
    NotFoundError: NotFound,
    ConflictError: Conflict,
    InvalidError: BadRequest,
}


def domain_errors(handler: Handler) -> Handler:
    """Wrap a handler so that a refusal answers with its status and message."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except DomainError as exc:
            raise _API_ERRORS[type(exc)](exc.message) from None

    return wrapper
