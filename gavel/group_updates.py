"""PATCH and batch updates of a policy group: all of them or none, one event.

The group row is locked first, so concurrent updates of one group queue up; the
org row (locked by ``record_group_change``) is always taken last, which keeps the
lock order the same in every transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from gavel.audits import group_target, request_audit
from gavel.db import rows_touched
from gavel.domain_errors import DomainError, InvalidError, NotFoundError
from gavel.enforcement import ConfigError
from gavel.group_snapshot import record_group_change
from gavel.pack_config import validated_config
from gavel.policy_group_models import (
    InsightsAccountReference,
    PolicyGroupUpdate,
    PolicyPackReference,
    StackReference,
)
from gavel.policy_groups import GroupRow, find_group


@dataclass(frozen=True)
class _Applied:
    """One update applied: the group as it is now, whether it was renamed, and whether
    its packs, their config or its members changed (what an audit-mode group audits)."""

    group: GroupRow
    renamed: bool
    audited_change: bool


async def update_group(pool: asyncpg.Pool, org_id: int, name: str,
                       updates: list[PolicyGroupUpdate], topic: str, *,
                       batch: bool = False, audit_delay: float | None = None) -> int:
    """Apply ``updates`` in order in one transaction; return the new org revision.

    A change to an audit-mode group's packs, their config or its members queues an
    audit of that group (starting ``audit_delay`` seconds later, joined by further
    changes meanwhile); ``None`` queues none. Updates that change none of these (adding
    a member again, removing one that is not there) queue none either.
    """
    for index, update in enumerate(updates):
        if update.is_empty():
            raise InvalidError(f"{_where(index, batch)}the update names no change")
    async with pool.acquire() as conn, conn.transaction():
        group = await find_group(conn, org_id, name, for_update=True)
        renamed = audited = False
        for index, update in enumerate(updates):
            try:
                applied = await _apply(conn, org_id, group, update)
            except DomainError as exc:
                raise exc.prefixed(_where(index, batch)) from None
            group = applied.group
            renamed = renamed or applied.renamed
            audited = audited or applied.audited_change
        revision = await record_group_change(conn, org_id, group.id,
                                             "renamed" if renamed else "updated", topic)
        if audit_delay is not None and group.mode == "audit" and audited:
            await request_audit(conn, org_id, target=group_target(group.id),
                                trigger="group-change", delay=audit_delay,
                                policy_group=group.name)
        return revision


def _where(index: int, batch: bool) -> str:
    return f"update {index}: " if batch else ""


async def _apply(conn: asyncpg.Connection, org_id: int, group: GroupRow,
                 update: PolicyGroupUpdate) -> _Applied:
    changed = await _apply_membership(conn, org_id, group, update)
    if update.agentPoolId is not None:
        await conn.execute(
            "UPDATE policy_groups SET agent_pool_id = NULLIF($2, ''), updated_at = now() "
            "WHERE id = $1", group.id, update.agentPoolId)
    if update.newName is not None and update.newName != group.name:
        return _Applied(await _rename(conn, group, update.newName), True, changed)
    return _Applied(group, False, changed)


async def _apply_membership(conn: asyncpg.Connection, org_id: int, group: GroupRow,
                            update: PolicyGroupUpdate) -> bool:
    """Apply the update's pack and member changes; whether any of them changed a row."""
    # Removals first, so that "remove X, add X" in one request ends with X present.
    changed: list[bool] = []
    if update.removePolicyPack:
        changed.append(await _remove_pack(conn, org_id, group, update.removePolicyPack))
    if update.addPolicyPack:
        changed.append(await _add_pack(conn, org_id, group, update.addPolicyPack))
    if update.removeStack:
        changed.append(await _set_stack(conn, org_id, group, update.removeStack,
                                        "removeStack", member=False))
    if update.addStack:
        changed.append(await _set_stack(conn, org_id, group, update.addStack, "addStack",
                                        member=True))
    if update.removeInsightsAccount:
        changed.append(await _set_account(conn, org_id, group, update.removeInsightsAccount,
                                          "removeInsightsAccount", member=False))
    if update.addInsightsAccount:
        changed.append(await _set_account(conn, org_id, group, update.addInsightsAccount,
                                          "addInsightsAccount", member=True))
    return any(changed)


async def _rename(conn: asyncpg.Connection, group: GroupRow,
                  new_name: str) -> GroupRow:
    if group.is_org_default:
        raise InvalidError("newName: Cannot rename the default Policy Group")
    try:
        await conn.execute("UPDATE policy_groups SET name = $2, updated_at = now() "
                           "WHERE id = $1", group.id, new_name)
    except asyncpg.UniqueViolationError:
        # taken, also by a group created or renamed meanwhile; Pulumi's PATCH answers
        # 400 or 404, never 409 (which its POST answers)
        raise InvalidError(f"newName: Policy Group '{new_name}' already exists") from None
    return GroupRow(group.id, new_name, group.entity_type, group.mode, group.is_org_default)


def _require_entity_type(group: GroupRow, wanted: str, field: str) -> None:
    if group.entity_type != wanted:
        raise InvalidError(f"{field}: Policy Group '{group.name}' applies to "
                           f"{group.entity_type}, not {wanted}")


async def _set_stack(conn: asyncpg.Connection, org_id: int, group: GroupRow,
                     ref: StackReference, field: str, *, member: bool) -> bool:
    _require_entity_type(group, "stacks", field)
    stack_id = await conn.fetchval(
        "SELECT id FROM stacks WHERE org_id = $1 AND project = $2 AND name = $3",
        org_id, ref.routingProject, ref.name)
    if stack_id is None:
        raise NotFoundError(f"{field}: Stack '{ref.routingProject}/{ref.name}' not found")
    return await _set_member(conn, group, "stack", stack_id, member, field,
                             f"Stack '{ref.routingProject}/{ref.name}'")


async def _set_account(conn: asyncpg.Connection, org_id: int, group: GroupRow,
                       ref: InsightsAccountReference, field: str, *, member: bool) -> bool:
    _require_entity_type(group, "accounts", field)
    row = await conn.fetchrow(
        "SELECT id, account_id FROM accounts WHERE org_id = $1 AND name = $2",
        org_id, ref.name)
    if row is None:
        raise NotFoundError(f"{field}: Account '{ref.name}' not found")
    if ref.id is not None and ref.id != row["account_id"]:
        raise InvalidError(f"{field}.id: Account '{ref.name}' has id "
                           f"'{row['account_id']}', not '{ref.id}'")
    return await _set_member(conn, group, "account", row["id"], member, field,
                             f"Account '{ref.name}'")


async def _set_member(conn: asyncpg.Connection, group: GroupRow, kind: str, entity_id: int,
                      member: bool, field: str, label: str) -> bool:
    """Make the stack (``kind`` "stack") or account of ``entity_id`` an explicit member
    of the group, or not; whether that changed a row. A stack (account) in no other
    group is in the default group whatever its rows say (``gavel.membership``):
    removing it from there would change nothing, and is refused."""
    table = f"policy_group_{kind}s"
    if member:
        return rows_touched(await conn.execute(
            f"INSERT INTO {table} (group_id, {kind}_id) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING", group.id, entity_id)) > 0
    if group.is_org_default and not await conn.fetchval(
            f"""SELECT 1 FROM {table} m JOIN policy_groups g ON g.id = m.group_id
                WHERE m.{kind}_id = $1 AND NOT g.is_org_default LIMIT 1""", entity_id):
        raise InvalidError(f"{field}: {label} is in the default Policy Group because it "
                           f"is in no other; add it to another Policy Group to take it out")
    return rows_touched(await conn.execute(
        f"DELETE FROM {table} WHERE group_id = $1 AND {kind}_id = $2",
        group.id, entity_id)) > 0


async def _find_pack(conn: asyncpg.Connection, org_id: int, name: str, field: str) -> int:
    pack_id = await conn.fetchval(
        "SELECT id FROM policy_packs WHERE org_id = $1 AND name = $2", org_id, name)
    if pack_id is None:
        raise NotFoundError(f"{field}: Policy Pack '{name}' not found")
    return int(pack_id)


async def _find_version(conn: asyncpg.Connection, pack_id: int, ref: PolicyPackReference,
                        field: str) -> asyncpg.Record:
    """The version named by ``version``, or by ``versionTag`` when version is 0."""
    select = "SELECT id, version, version_tag, policies FROM policy_pack_versions "
    if ref.version:
        row = await conn.fetchrow(select + "WHERE pack_id = $1 AND version = $2",
                                  pack_id, ref.version)
        if row is None:
            raise NotFoundError(f"{field}: Policy Pack '{ref.name}' version "
                                f"{ref.version} not found")
        if ref.versionTag and ref.versionTag != row["version_tag"]:
            raise InvalidError(f"{field}.versionTag: version {ref.version} of Policy "
                               f"Pack '{ref.name}' is tagged '{row['version_tag']}', "
                               f"not '{ref.versionTag}'")
        return row
    if not ref.versionTag:
        raise InvalidError(f"{field}: give a version or a versionTag")
    row = await conn.fetchrow(select + "WHERE pack_id = $1 AND version_tag = $2",
                              pack_id, ref.versionTag)
    if row is None:
        raise NotFoundError(f"{field}: Policy Pack '{ref.name}' versionTag "
                            f"'{ref.versionTag}' not found")
    return row


async def _add_pack(conn: asyncpg.Connection, org_id: int, group: GroupRow,
                    ref: PolicyPackReference) -> bool:
    """Apply the pack's version with its config; whether that changed anything."""
    pack_id = await _find_pack(conn, org_id, ref.name, "addPolicyPack")
    version = await _find_version(conn, pack_id, ref, "addPolicyPack")
    try:
        config = validated_config(ref.config, version["policies"])
    except ConfigError as exc:
        raise InvalidError(f"addPolicyPack.{exc}") from None
    # A pack appears once per group: adding it again replaces version and config (and
    # leaves the row as it is when they are the same).
    return rows_touched(await conn.execute(
        """INSERT INTO policy_group_packs AS applied (group_id, pack_id, pack_version_id,
                                                      config, environments)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (group_id, pack_id) DO UPDATE
           SET pack_version_id = EXCLUDED.pack_version_id, config = EXCLUDED.config,
               environments = EXCLUDED.environments, added_at = now()
           WHERE (applied.pack_version_id, applied.config, applied.environments)
                 IS DISTINCT FROM
                 (EXCLUDED.pack_version_id, EXCLUDED.config, EXCLUDED.environments)""",
        group.id, pack_id, version["id"], config, ref.environments or [])) > 0


async def _remove_pack(conn: asyncpg.Connection, org_id: int, group: GroupRow,
                       ref: PolicyPackReference) -> bool:
    """Remove the pack from the group; named by version or versionTag, only while that
    version is the one applied (a pack not applied, or another version of it, stays as
    it is). Whether it was removed."""
    pack_id = await _find_pack(conn, org_id, ref.name, "removePolicyPack")
    version_id = None
    if ref.version or ref.versionTag:
        version_id = (await _find_version(conn, pack_id, ref, "removePolicyPack"))["id"]
    return rows_touched(await conn.execute(
        """DELETE FROM policy_group_packs WHERE group_id = $1 AND pack_id = $2
           AND ($3::bigint IS NULL OR pack_version_id = $3)""",
        group.id, pack_id, version_id)) > 0
