"""Insights-style cloud accounts: registration, reading and deletion."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import asyncpg
from pydantic import Field

from gavel.domain_errors import ConflictError, NotFoundError
from gavel.entity_names import Name, name_problem
from gavel.group_snapshot import record_group_change
from gavel.policy_group_models import InsightsAccountFields, ShortText, UserInfo


class NewInsightsAccount(InsightsAccountFields):
    name: Name
    id: ShortText | None = None
    provider: Annotated[str, Field(min_length=1, max_length=128)]
    ownedBy: UserInfo = UserInfo()
    scheduledScanEnabled: bool = False


_COLUMNS = ("account_id, name, owned_by, provider, provider_version, provider_env_ref, "
            "scheduled_scan_enabled, agent_pool_id, provider_config, scan_status")


def _account_not_found(name: str) -> NotFoundError:
    return NotFoundError(f"Account '{name[:100]}' not found")


def account_view(row: asyncpg.Record) -> dict[str, Any]:
    """The InsightsAccount document; optional fields only when set."""
    view: dict[str, Any] = {"id": row["account_id"], "name": row["name"],
                            "ownedBy": row["owned_by"], "provider": row["provider"],
                            "scheduledScanEnabled": row["scheduled_scan_enabled"]}
    optional = {"providerVersion": "provider_version", "providerEnvRef": "provider_env_ref",
                "agentPoolID": "agent_pool_id", "providerConfig": "provider_config",
                "scanStatus": "scan_status"}
    for field, column in optional.items():
        if row[column] is not None:
            view[field] = row[column]
    return view


async def create_account(conn: asyncpg.Pool | asyncpg.Connection, org_id: int,
                         account: NewInsightsAccount) -> dict[str, Any]:
    row = await conn.fetchrow(
        f"""INSERT INTO accounts (org_id, {_COLUMNS})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (org_id, name) DO NOTHING RETURNING {_COLUMNS}""",
        org_id, account.id or str(uuid.uuid4()), account.name,
        account.ownedBy.model_dump(exclude_none=True), account.provider,
        account.providerVersion, account.providerEnvRef, account.scheduledScanEnabled,
        account.agentPoolID, account.providerConfig, account.scanStatus)
    if row is None:
        raise ConflictError(f"Account '{account.name}' already exists")
    return account_view(row)


async def list_accounts(conn: asyncpg.Pool | asyncpg.Connection, org_id: int, offset: int,
                        limit: int) -> tuple[list[dict[str, Any]], int]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS}, count(*) OVER () AS total FROM accounts WHERE org_id = $1 "
        "ORDER BY name OFFSET $2 LIMIT $3", org_id, offset, limit)
    total = rows[0]["total"] if rows else await conn.fetchval(
        "SELECT count(*) FROM accounts WHERE org_id = $1", org_id)
    return [account_view(r) for r in rows], int(total)


async def get_account(conn: asyncpg.Pool | asyncpg.Connection, org_id: int,
                      name: str) -> dict[str, Any]:
    if name_problem(name):
        raise _account_not_found(name)
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM accounts WHERE org_id = $1 AND name = $2", org_id, name)
    if row is None:
        raise _account_not_found(name)
    return account_view(row)


async def delete_account(pool: asyncpg.Pool, org_id: int, name: str, topic: str) -> None:
    """Delete the account; every group it was an explicit member of records a change."""
    if name_problem(name):
        raise _account_not_found(name)
    async with pool.acquire() as conn, conn.transaction():
        account_id = await conn.fetchval(
            "SELECT id FROM accounts WHERE org_id = $1 AND name = $2", org_id, name)
        if account_id is None:
            raise _account_not_found(name)
        # Groups before the account row: group updates lock the group first and the
        # account (through the membership foreign key) after, so this order cannot deadlock.
        groups = await conn.fetch(
            """SELECT g.id FROM policy_groups g JOIN policy_group_accounts m
               ON m.group_id = g.id WHERE m.account_id = $1 ORDER BY g.id FOR UPDATE OF g""",
            account_id)
        deleted = await conn.fetchval("DELETE FROM accounts WHERE id = $1 RETURNING id",
                                      account_id)
        if deleted is None:
            raise _account_not_found(name)
        for row in groups:
            await record_group_change(conn, org_id, row["id"], "updated", topic)
