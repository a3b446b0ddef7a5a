"""``page[after]`` and ``page[before]``: opaque tokens in ``links.next`` and ``links.prev``
of the result lists, so that following them seeks by sort key instead of skipping
rows with OFFSET.

A token holds the list, the sort and a digest of the filters it was made for, the row
position it continues at (so ``meta.page`` stays that of ``page[number]``), and the sort
key of the row it continues from. It is base64url text led by a checksum of the rest:
a damaged or hand-edited token is refused with 400. It is no secret: a made-up token
only picks a position in a list its bearer may read anyway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from api.errors import BadRequest
from api.paging import AFTER, BEFORE, Page

VERSION = 1
MAX_TOKEN_CHARS = 8000
_CHECKSUM_BYTES = 8
_CHECKSUM_KEY = b"gavel page token"


@dataclass(frozen=True)
class ListIdentity:
    """What a token is valid for: a list, its sort, and its filters."""

    scope: str
    sort: str
    filters: str

    @classmethod
    def of(cls, scope: str, sort: Sequence[tuple[str, bool]],
           filters: Mapping[str, Any]) -> ListIdentity:
        canonical = orjson.dumps(sorted((name, str(value)) for name, value in filters.items()))
        digest = hashlib.blake2b(canonical, digest_size=6).hexdigest()
        return cls(scope, ",".join(f"{'-' if desc else ''}{name}" for name, desc in sort), digest)


@dataclass(frozen=True)
class Continuation:
    """A page that continues the list after (or before) a row: the row's sort key as
    JSON values, and the position of the page's first row (after) or of that row
    (before)."""

    parameter: str
    position: int
    key: list[Any]

    @property
    def before(self) -> bool:
        return self.parameter == BEFORE

    def refused(self, reason: str) -> BadRequest:
        return BadRequest(f"{self.parameter}: {reason}")


def _checksum(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=_CHECKSUM_BYTES, key=_CHECKSUM_KEY).digest()


def encode(identity: ListIdentity, parameter: str, position: int, key: list[Any]) -> str:
    payload = orjson.dumps([VERSION, identity.scope, identity.sort, identity.filters,
                            parameter, position, key])
    return base64.urlsafe_b64encode(_checksum(payload) + payload).rstrip(b"=").decode()


def _payload(parameter: str, token: str) -> list[Any]:
    bad = BadRequest(f"{parameter}: not a token from this list's links")
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise bad from None
    checksum, payload = raw[:_CHECKSUM_BYTES], raw[_CHECKSUM_BYTES:]
    if not payload or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != token:
        raise bad  # characters outside the alphabet, padding, or trailing bits
    if checksum != _checksum(payload):
        raise BadRequest(f"{parameter}: the token is damaged or was altered")
    try:
        fields = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise bad from None
    if not (isinstance(fields, list) and len(fields) == 7 and fields[0] == VERSION
            and all(isinstance(f, str) for f in fields[1:5])
            and type(fields[5]) is int and fields[5] >= 0 and isinstance(fields[6], list)):
        raise bad
    return fields


def decode(parameter: str, token: str, identity: ListIdentity) -> Continuation:
    _, scope, sort, filters, made_for, position, key = _payload(parameter, token)
    if scope != identity.scope:
        raise BadRequest(f"{parameter}: the token belongs to another list ({scope})")
    if sort != identity.sort:
        raise BadRequest(f"{parameter}: the token was made for sort={sort or '(default)'}, "
                         f"not sort={identity.sort or '(default)'}")
    if filters != identity.filters:
        raise BadRequest(f"{parameter}: the token was made for other filters")
    if made_for != parameter:
        raise BadRequest(f"{parameter}: the token was made for {made_for}")
    return Continuation(parameter, position, key)


def requested_continuation(request: web.Request, page: Page,
                           identity: ListIdentity) -> Continuation | None:
    """The request's ``page[after]`` or ``page[before]``, checked against the list and the
    requested page: a token continues at one row position, that of one page number."""
    given = {name: request.query.getall(name, []) for name in (AFTER, BEFORE)}
    for name, values in given.items():
        if len(values) > 1:
            raise BadRequest(f"{name}: given more than once")
    if given[AFTER] and given[BEFORE]:
        raise BadRequest(f"{BEFORE}: cannot be combined with {AFTER}")
    parameter = AFTER if given[AFTER] else BEFORE if given[BEFORE] else None
    if parameter is None:
        return None
    continuation = decode(parameter, given[parameter][0], identity)
    starts = continuation.position - (page.size if continuation.before else 0)
    if starts != page.offset:
        raise continuation.refused(
            f"the token continues at row {max(starts, 0)}, not at page[number]={page.number} "
            f"with page[size]={page.size} (row {page.offset})")
    return continuation
