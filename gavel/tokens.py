"""API tokens: ``Authorization: token <value>``, stored only as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Literal

import asyncpg

from gavel.domain_errors import InvalidError, NotFoundError

Role = Literal["admin", "member", "ingest"]
ROLES: tuple[Role, ...] = ("admin", "member", "ingest")
TOKEN_PREFIX = "gvl_"
# notified (by triggers) whenever a token or an org changes or goes away
TOKENS_CHANNEL = "gavel_tokens"


@dataclass(frozen=True)
class Principal:
    token_id: uuid.UUID
    org_id: int
    org_name: str
    role: Role


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token_value() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def issue_token(conn: asyncpg.Connection, org_id: int, role: Role,
                      description: str = "") -> tuple[uuid.UUID, str]:
    """Store a new token's digest; return its id and the value (shown once)."""
    token_id = uuid.uuid4()
    value = new_token_value()
    await conn.execute(
        "INSERT INTO tokens (id, org_id, role, description, token_hash) VALUES ($1,$2,$3,$4,$5)",
        token_id, org_id, role, description, digest(value))
    return token_id, value


async def revoke_token(conn: asyncpg.Connection, org_id: int, token_id: uuid.UUID) -> None:
    """Revoke one of the org's tokens; never its last admin token, which would lock the
    organization out of its own API.

    The org's admin tokens are locked first, so that two revocations of its last two
    admin tokens queue up and the second sees the first.
    """
    async with conn.transaction():
        admins = await conn.fetch(
            """SELECT id FROM tokens WHERE org_id = $1 AND role = 'admin'
               AND revoked_at IS NULL ORDER BY id FOR UPDATE""", org_id)
        if [r["id"] for r in admins] == [token_id]:
            raise InvalidError(f"id: token '{token_id}' is the organization's last admin "
                               "token; create another admin token first")
        done = await conn.fetchval(
            """UPDATE tokens SET revoked_at = now()
               WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL RETURNING id""",
            token_id, org_id)
    if done is None:
        raise NotFoundError(f"Token '{token_id}' not found")


async def _lookup(pool: asyncpg.Pool, token_hash: bytes) -> Principal | None:
    row = await pool.fetchrow(
        """SELECT t.id, t.org_id, o.name, t.role FROM tokens t JOIN orgs o ON o.id = t.org_id
           WHERE t.token_hash = $1 AND t.revoked_at IS NULL""",
        token_hash)
    if row is None:
        return None
    return Principal(row["id"], row["org_id"], row["name"], row["role"])


class TokenCache:
    """Recently authenticated tokens, by digest, for ``ttl`` seconds.

    A change to any token or org (revocation, deletion) empties it at once through
    ``TOKENS_CHANNEL``; the time limit covers a notification lost while the listening
    connection was down. Unknown tokens are never cached. ``ttl`` 0 turns it off.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: dict[bytes, tuple[float, Principal]] = {}

    async def authenticate(self, pool: asyncpg.Pool, token: str) -> Principal | None:
        key = digest(token)
        now = time.monotonic()
        cached = self._entries.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await _lookup(pool, key)
        if found is not None and self._ttl > 0:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[key] = (now + self._ttl, found)
        else:
            self._entries.pop(key, None)
        return found

    def forget(self, token_id: uuid.UUID) -> None:
        for key in [k for k, (_, p) in self._entries.items() if p.token_id == token_id]:
            del self._entries[key]

    def clear(self, *_notification: object) -> None:
        self._entries.clear()
