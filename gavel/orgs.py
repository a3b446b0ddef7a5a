"""Organizations: created with their two default policy groups and a first admin token."""

from __future__ import annotations

import re

import asyncpg

from gavel.tokens import Role, issue_token

ORG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
DEFAULT_STACK_GROUP = "default-policy-group"
DEFAULT_ACCOUNT_GROUP = "default-account-policy-group"


class OrgExists(ValueError):
    pass


class InvalidOrgName(ValueError):
    pass


class UnknownOrg(LookupError):
    pass


async def create_org(pool: asyncpg.Pool, name: str) -> tuple[int, str]:
    """Create the org, its default groups and an admin token; return (org id, token)."""
    if not ORG_NAME.match(name):
        raise InvalidOrgName(
            f"invalid organization name {name!r}: use letters, digits, '.', '_' or '-' "
            "(at most 100, starting with a letter or digit)")
    async with pool.acquire() as conn, conn.transaction():
        org_id = await conn.fetchval(
            "INSERT INTO orgs (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id", name)
        if org_id is None:
            raise OrgExists(f"organization {name!r} already exists")
        await conn.executemany(
            """INSERT INTO policy_groups (org_id, name, entity_type, mode, is_org_default)
               VALUES ($1, $2, $3, $4, true)""",
            [(org_id, DEFAULT_STACK_GROUP, "stacks", "preventative"),
             (org_id, DEFAULT_ACCOUNT_GROUP, "accounts", "audit")])
        _, token = await issue_token(conn, org_id, "admin", "created with the organization")
    return org_id, token


async def issue_org_token(pool: asyncpg.Pool, name: str, role: Role,
                          description: str) -> str:
    """A new token of an existing org (for whoever runs the service and lost its tokens)."""
    async with pool.acquire() as conn, conn.transaction():
        org_id = await conn.fetchval("SELECT id FROM orgs WHERE name = $1", name)
        if org_id is None:
            raise UnknownOrg(f"organization {name!r} does not exist")
        _, token = await issue_token(conn, org_id, role, description)
    return token
