"""The in-memory group index: org -> entity -> applicable packs.

Built from group snapshots (``gavel.group_snapshot``) and kept current by
``gavel.group-changes``. Resolution never touches Postgres; its cost depends on the
groups of the one entity being resolved, not on the size of the org: members and each
entity type's default group are found by key, each pack's identity (version and
config) is worked out once when its group is indexed, and results are memoized per set
of groups and dropped when the org changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

STACKS, ACCOUNTS = "stacks", "accounts"


@dataclass(frozen=True, slots=True)
class GroupRef:
    name: str
    mode: str  # audit | preventative


@dataclass(frozen=True, slots=True)
class Applicable:
    """One (pack version, effective config) to evaluate, and every group applying it."""

    version_id: int
    pack: str
    version: int
    version_tag: str
    config: dict[str, dict[str, Any]]
    groups: tuple[GroupRef, ...]


# what makes two applied packs the same evaluation: (version id, config)
_PackKey = tuple[int, str]


@dataclass(slots=True)
class Group:
    id: int
    name: str
    entity_type: str
    mode: str
    is_default: bool
    # each applied pack under this group alone, in the order applied
    packs: tuple[tuple[_PackKey, Applicable], ...]
    applicables: tuple[Applicable, ...]  # what the group alone resolves to
    members: frozenset[str]

    @classmethod
    def of(cls, snapshot: dict[str, Any]) -> Group:
        ref = GroupRef(snapshot["name"], snapshot["mode"])
        packs = tuple((_pack_key(p), _applicable(p, ref)) for p in snapshot["appliedPolicyPacks"])
        return cls(id=snapshot["id"], name=snapshot["name"], entity_type=snapshot["entityType"],
                   mode=snapshot["mode"], is_default=snapshot["isOrgDefault"], packs=packs,
                   applicables=_merge(packs), members=_members(snapshot))


@dataclass(slots=True)
class OrgIndex:
    revision: int = 0
    groups: dict[int, Group] = field(default_factory=dict)
    # entity key ("project/stack" or account name) -> ids of groups naming it explicitly
    members: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    # entity type -> id of the org's default group, which applies to entities in no group
    defaults: dict[str, int] = field(default_factory=dict)
    resolved: dict[tuple[str, frozenset[int]], tuple[Applicable, ...]] = field(
        default_factory=dict)


def stack_key(project: str, stack: str) -> str:
    return f"{project}/{stack}"


def _pack_key(pack: dict[str, Any]) -> _PackKey:
    return pack["versionId"], orjson.dumps(pack["config"], option=orjson.OPT_SORT_KEYS).decode()


def _applicable(pack: dict[str, Any], ref: GroupRef) -> Applicable:
    return Applicable(version_id=pack["versionId"], pack=pack["name"],
                      version=pack["version"], version_tag=pack["versionTag"],
                      config=pack["config"] or {}, groups=(ref,))


def _members(snapshot: dict[str, Any]) -> frozenset[str]:
    if snapshot["entityType"] == STACKS:
        return frozenset(stack_key(s["routingProject"], s["name"]) for s in snapshot["stacks"])
    return frozenset(snapshot["accounts"])


class GroupIndex:
    def __init__(self) -> None:
        self._orgs: dict[str, OrgIndex] = {}

    def revision(self, org: str) -> int | None:
        index = self._orgs.get(org)
        return index.revision if index else None

    def knows(self, org: str) -> bool:
        return org in self._orgs

    def load_org(self, org: str, revision: int, snapshots: list[dict[str, Any]]) -> None:
        """Replace everything known about ``org`` with a consistent snapshot."""
        index = OrgIndex(revision=revision)
        self._orgs[org] = index
        for snapshot in snapshots:
            self._put(index, snapshot)

    def apply_change(self, change: dict[str, Any]) -> bool:
        """Apply one group-change event; False if it is not newer than what we have."""
        org = change["org"]
        index = self._orgs.setdefault(org, OrgIndex())
        if change["revision"] <= index.revision:
            return False
        index.revision = change["revision"]
        self._remove(index, change["groupId"])
        if not change.get("deleted") and change.get("group"):
            self._put(index, change["group"])
        index.resolved.clear()
        return True

    def _remove(self, index: OrgIndex, group_id: int) -> None:
        group = index.groups.pop(group_id, None)
        if group is None:
            return
        if index.defaults.get(group.entity_type) == group_id:
            del index.defaults[group.entity_type]
        for member in group.members:
            ids = index.members.get((group.entity_type, member))
            if ids is not None:
                ids.discard(group_id)
                if not ids:
                    del index.members[(group.entity_type, member)]

    def _put(self, index: OrgIndex, snapshot: dict[str, Any]) -> None:
        group = Group.of(snapshot)
        index.groups[group.id] = group
        if group.is_default:
            index.defaults[group.entity_type] = group.id
        for member in group.members:
            index.members.setdefault((group.entity_type, member), set()).add(group.id)
        index.resolved.clear()

    def resolve(self, org: str, entity_type: str, entity: str) -> tuple[Applicable, ...]:
        """Packs to evaluate for an entity: union over its groups, identical
        (pack version, config) pairs once, with every group that applies them."""
        index = self._orgs.get(org)
        if index is None:
            return ()
        explicit = index.members.get((entity_type, entity))
        if explicit:
            group_ids = frozenset(explicit)
        else:
            default = index.defaults.get(entity_type)
            group_ids = frozenset() if default is None else frozenset((default,))
        cache_key = (entity_type, group_ids)
        found = index.resolved.get(cache_key)
        if found is None:
            groups = [index.groups[g] for g in sorted(group_ids)]
            found = (groups[0].applicables if len(groups) == 1
                     else _merge(pack for group in groups for pack in group.packs))
            index.resolved[cache_key] = found
        return found


def _merge(packs: Iterable[tuple[_PackKey, Applicable]]) -> tuple[Applicable, ...]:
    """Each (pack version, config) once, in the order first applied, under every group
    applying it (groups in the order of ``packs``)."""
    merged: dict[_PackKey, Applicable] = {}
    for key, applicable in packs:
        seen = merged.get(key)
        merged[key] = applicable if seen is None else replace(
            seen, groups=seen.groups + applicable.groups)
    return tuple(merged.values())
