"""API tokens: ``Authorization: token <value>``, stored only as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Literal

import asyncpg

Role = Literal["admin", "member", "ingest"]
ROLES: tuple[Role, ...] = ("admin", "member", "ingest")
TOKEN_PREFIX = "gvl_"


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


async def authenticate(pool: asyncpg.Pool, token: str) -> Principal | None:
    row = await pool.fetchrow(
        """SELECT t.id, t.org_id, o.name, t.role FROM tokens t JOIN orgs o ON o.id = t.org_id
           WHERE t.token_hash = $1 AND t.revoked_at IS NULL""",
        digest(token))
    if row is None:
        return None
    return Principal(row["id"], row["org_id"], row["name"], row["role"])
