"""Policy packs: named, versioned sets of Rego policies, stored per org.

Versions are numbered 1, 2, 3… per pack from ``policy_packs.next_version``, which a
publish bumps while holding the pack row's lock, so concurrent publishes never get
the same number. A version is immutable; deleting the last version of a pack also
deletes the pack, and a later publish of that name starts again at version 1.
Publishing never loads modules into OPA for evaluation: it only compile-checks them
(``gavel.pack_check``) before anything is stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from opa_client import AsyncOpaClient

from gavel.enforcement import ALL, LEVELS, ConfigError, check_config_schema
from gavel.pack_check import check_modules, remove_version_modules

NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
NAME_RULE = "use 1 to 100 letters, digits, '-', '_' or '.' (not '.' or '..' alone)"


class PackInvalid(ValueError):
    """The pack is wrong; the message names the field (e.g. ``policies[0].rego``)."""


class PackNotFound(LookupError):
    pass


class VersionTagExists(ValueError):
    pass


class VersionInUse(ValueError):
    """A policy group applies the version; the message names the groups."""


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    enforcement_level: str
    config_schema: dict[str, Any] | None
    rego: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "enforcementLevel": self.enforcement_level,
                "configSchema": self.config_schema, "rego": self.rego}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Policy:
        return cls(name=data["name"], description=data.get("description", ""),
                   enforcement_level=data.get("enforcementLevel", "advisory"),
                   config_schema=data.get("configSchema"), rego=data["rego"])


@dataclass(frozen=True)
class PackDraft:
    """What a publish asks to store, before it has a version number."""

    name: str
    display_name: str
    version_tag: str
    policies: tuple[Policy, ...]


@dataclass(frozen=True)
class PackVersion:
    id: int
    pack_id: int
    name: str
    display_name: str
    version: int
    version_tag: str
    policies: tuple[Policy, ...]
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "displayName": self.display_name,
                "version": self.version, "versionTag": self.version_tag,
                "policies": [p.to_json() for p in self.policies],
                "createdAt": self.created_at.isoformat()}


@dataclass(frozen=True)
class PackSummary:
    name: str
    display_name: str
    versions: tuple[int, ...]
    version_tags: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "displayName": self.display_name,
                "versions": list(self.versions), "versionTags": list(self.version_tags)}


def valid_name(value: str) -> bool:
    """Pack and policy names are URL path segments: '.' and '..' alone would be rewritten."""
    return bool(NAME.match(value)) and value not in (".", "..")


def validate_draft(draft: PackDraft) -> None:
    """Names, levels, uniqueness and configSchemas; Rego is checked by OPA separately."""
    if not valid_name(draft.name):
        raise PackInvalid(f"name: invalid policy pack name {draft.name!r}: {NAME_RULE}")
    if not draft.version_tag.strip():
        raise PackInvalid("versionTag: must not be empty")
    if not draft.policies:
        raise PackInvalid("policies: a pack needs at least one policy")
    seen: dict[str, int] = {}
    for index, policy in enumerate(draft.policies):
        where = f"policies[{index}]"
        _validate_policy(policy, where)
        if policy.name in seen:
            raise PackInvalid(f"{where}.name: duplicate policy name {policy.name!r} "
                              f"(also policies[{seen[policy.name]}])")
        seen[policy.name] = index


def _validate_policy(policy: Policy, where: str) -> None:
    if not valid_name(policy.name):
        raise PackInvalid(f"{where}.name: invalid policy name {policy.name!r}: {NAME_RULE}")
    if policy.name == ALL:
        raise PackInvalid(f"{where}.name: {ALL!r} is reserved (it means every policy "
                          "in a pack's config)")
    if policy.enforcement_level not in LEVELS:
        raise PackInvalid(f"{where}.enforcementLevel: must be one of "
                          f"{', '.join(LEVELS)} (got {policy.enforcement_level!r})")
    try:
        check_config_schema(policy.config_schema, f"{where}.configSchema")
    except ConfigError as exc:
        raise PackInvalid(str(exc)) from None
    if not policy.rego.strip():
        raise PackInvalid(f"{where}.rego: must not be empty")


async def publish(pool: asyncpg.Pool, opa: AsyncOpaClient, org_id: int,
                  draft: PackDraft) -> int:
    """Validate, compile-check every module in OPA, then store; return the version number.

    Raises PackInvalid, ModuleRejected (bad Rego), OpaUnavailable or VersionTagExists;
    nothing is stored unless every check passed.
    """
    validate_draft(draft)
    await check_modules(opa, [p.rego for p in draft.policies])
    return await store_version(pool, org_id, draft)


async def store_version(pool: asyncpg.Pool, org_id: int, draft: PackDraft) -> int:
    """Store a checked draft as the pack's next version; return the version number."""
    async with pool.acquire() as conn, conn.transaction():
        # The upsert locks the pack row until commit: publishes of one pack serialize.
        pack_id, version = await conn.fetchrow(
            """INSERT INTO policy_packs (org_id, name, next_version)
               VALUES ($1, $2, 2)
               ON CONFLICT (org_id, name) DO UPDATE
                   SET next_version = policy_packs.next_version + 1
               RETURNING id, next_version - 1""",
            org_id, draft.name)
        taken = await conn.fetchval(
            "SELECT 1 FROM policy_pack_versions WHERE pack_id = $1 AND version_tag = $2",
            pack_id, draft.version_tag)
        if taken:
            raise VersionTagExists(f"policy pack {draft.name!r} already has a version "
                                   f"tagged {draft.version_tag!r}")
        await conn.execute(
            """INSERT INTO policy_pack_versions (pack_id, version, version_tag,
                                                 display_name, policies)
               VALUES ($1, $2, $3, $4, $5)""",
            pack_id, version, draft.version_tag, draft.display_name,
            [p.to_json() for p in draft.policies])
    return int(version)


async def list_packs(pool: asyncpg.Pool | asyncpg.Connection,
                     org_id: int) -> list[PackSummary]:
    rows = await pool.fetch(
        """SELECT p.name,
                  (array_agg(v.display_name ORDER BY v.version DESC))[1] AS display_name,
                  array_agg(v.version ORDER BY v.version) AS versions,
                  array_agg(v.version_tag ORDER BY v.version) AS version_tags
           FROM policy_packs p JOIN policy_pack_versions v ON v.pack_id = p.id
           WHERE p.org_id = $1 GROUP BY p.id ORDER BY p.name""", org_id)
    return [PackSummary(r["name"], r["display_name"], tuple(r["versions"]),
                        tuple(r["version_tags"])) for r in rows]


_VERSION = """
SELECT v.id, v.pack_id, p.name, v.display_name, v.version, v.version_tag, v.policies,
       v.created_at
FROM policy_pack_versions v JOIN policy_packs p ON p.id = v.pack_id
WHERE p.org_id = $1 AND p.name = $2 AND {where}
ORDER BY v.version DESC LIMIT 1
"""


async def get_pack_version(conn: asyncpg.Pool | asyncpg.Connection, org_id: int, name: str,
                           *, version: int | None = None,
                           version_tag: str | None = None) -> PackVersion | None:
    """One version of a pack, by number or by versionTag (neither: the latest one)."""
    if version is not None:
        row = await conn.fetchrow(_VERSION.format(where="v.version = $3"),
                                  org_id, name, version)
    elif version_tag is not None:
        row = await conn.fetchrow(_VERSION.format(where="v.version_tag = $3"),
                                  org_id, name, version_tag)
    else:
        row = await conn.fetchrow(_VERSION.format(where="true"), org_id, name)
    return None if row is None else _pack_version(row)


def _pack_version(row: Mapping[str, Any]) -> PackVersion:
    return PackVersion(id=row["id"], pack_id=row["pack_id"], name=row["name"],
                       display_name=row["display_name"], version=row["version"],
                       version_tag=row["version_tag"],
                       policies=tuple(Policy.from_json(p) for p in row["policies"]),
                       created_at=row["created_at"])


async def delete_version(pool: asyncpg.Pool, org_id: int, name: str,
                         version: int) -> PackVersion:
    """Delete one version (and the pack with its last version); return what was deleted."""
    async with pool.acquire() as conn, conn.transaction():
        pack_id = await conn.fetchval(
            "SELECT id FROM policy_packs WHERE org_id = $1 AND name = $2 FOR UPDATE",
            org_id, name)
        # FOR UPDATE on the version row blocks a group from adding it meanwhile
        # (the foreign key takes a KEY SHARE lock on it).
        row = await conn.fetchrow(
            _VERSION.format(where="v.version = $3") + " FOR UPDATE OF v",
            org_id, name, version)
        if pack_id is None or row is None:
            raise PackNotFound(f"Policy pack '{name}' version {version} not found")
        groups = await _groups_applying(conn, row["id"])
        if groups:
            raise VersionInUse(f"policy pack {name!r} version {version} is applied by "
                               f"policy group(s) {', '.join(groups)}; remove it there first")
        await conn.execute("DELETE FROM policy_pack_versions WHERE id = $1", row["id"])
        await conn.execute(
            """DELETE FROM policy_packs WHERE id = $1 AND NOT EXISTS
               (SELECT 1 FROM policy_pack_versions WHERE pack_id = $1)""", pack_id)
    return _pack_version(row)


async def delete_and_unload(pool: asyncpg.Pool, opa: AsyncOpaClient, org_id: int,
                            name: str, version: int) -> None:
    """Delete a version and remove its modules from OPA (those that were loaded)."""
    deleted = await delete_version(pool, org_id, name, version)
    await remove_version_modules(opa, deleted.id, len(deleted.policies))


async def _groups_applying(conn: asyncpg.Connection, version_id: int) -> Sequence[str]:
    rows = await conn.fetch(
        """SELECT g.name FROM policy_group_packs gp JOIN policy_groups g ON g.id = gp.group_id
           WHERE gp.pack_version_id = $1 ORDER BY g.name""", version_id)
    return [r["name"] for r in rows]
