"""How the compliance counts change when entities' current state changes.

``gavel.compliance_summary`` replaces an entity's current pack runs and violations and
hands the rows it deleted (sign -1) and inserted (sign 1) to a ``ChangeCounter``; a
rebuild hands it an org's whole current state (sign 1). It adds up the change of every
count, keyed as the count tables are (``gavel.compliance_summary.COUNT_TABLES``):

* ``pack``: per pack version, the entities it ran on, errored on, and passed;
* ``policy``: per policy of a pack version, the entities failing it (its pack version
  ran without error and left a violation of it: none fails more often than it is
  evaluated), its violations by level, and the entities it was skipped on (disabled
  in every run of its pack version, which ran without error);
* ``group``: per group, of one pack or of all (``''``), the entities evaluated, errored
  and passing, and the violations by level;
* ``range``: per range of violation ids, how many violations lie in it, and bounds of
  when they were observed (only widened by what is added);
* ``block``: per block of entities, how many violations lie in it.

Each but the group counts is kept per group and under any group (``''``), and all per
entity type. An entity counts once per key: a pack version it ran twice (under groups
with different configs) passes only if neither run errored or left a violation. Counts
that do not change are left out, so a re-evaluation that changes nothing changes no
count but those of the ranges its violations' ids moved between.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

# a count table's kind -> its key -> the change of its fields (those of
# ``gavel.compliance_summary.CountTable.fields``, in order)
Changes = dict[str, dict[tuple[Any, ...], list[Any]]]
# org_id, entity_type, entity_key
Entity = tuple[int, str, str]


class PackRun(NamedTuple):
    """A row of ``current_pack_results``, added (sign 1) or taken away (-1)."""

    sign: int
    org_id: int
    entity_type: str
    entity_key: str
    pack: str
    pack_version: int
    version_tag: str | None
    groups: list[str]
    errored: bool
    violations: int
    disabled: list[str]


class FoundViolations(NamedTuple):
    """``count`` rows of ``current_violations`` alike in all but their id within a range
    of ids and when they were observed (between ``first_observed_at`` and
    ``last_observed_at``), added (sign 1) or taken away (-1)."""

    sign: int
    org_id: int
    entity_type: str
    entity_key: str
    groups: list[str]
    pack: str
    pack_version: int
    policy: str
    level: str
    id_range: int
    count: int
    first_observed_at: datetime | None
    last_observed_at: datetime | None


# a new row of changes of a count table kept in _row: the fields of its CountTable
_PACK = (None, 0, 0, 0)  # version_tag, evaluated, errored, passing
_POLICY = (0, 0, 0, 0)  # failing, advisory, mandatory, skipped
_GROUP = (0, 0, 0, 0, 0)  # evaluated, errored, passing, advisory, mandatory
# (sign, org_id, entity_type, entity_key, group_name, pack, pack_version)
_RunKey = tuple[int, int, str, str, str, str, int]


class _PackVersionRun:
    """The runs of one pack version on one entity under one group (or any: ``''``)."""

    __slots__ = ("errored", "runs", "version_tag", "violations")

    def __init__(self, run: PackRun) -> None:
        self.version_tag = run.version_tag
        self.errored = run.errored
        self.violations = run.violations
        self.runs = 1

    def add(self, run: PackRun) -> None:
        self.version_tag = _greatest(self.version_tag, run.version_tag)
        self.errored = self.errored or run.errored
        self.violations += run.violations
        self.runs += 1

    @property
    def passed(self) -> bool:
        return not self.errored and self.violations == 0


def _row(counts: dict[tuple[Any, ...], list[Any]], key: tuple[Any, ...],
         new: tuple[Any, ...]) -> list[Any]:
    """The changing fields of ``key``, ``new`` if it has none yet."""
    row = counts.get(key)
    if row is None:
        row = counts[key] = list(new)
    return row


class ChangeCounter:
    """Adds up the change of the counts: all the pack runs first (``add_runs``), then
    the violations (``add_found``, in as many parts as wanted), then ``changes``."""

    def __init__(self) -> None:
        self._per_pack: dict[_RunKey, _PackVersionRun] = {}
        # (sign, org_id, entity_type, entity_key, group_name, scope) -> [errored, violations]
        self._per_group: dict[tuple[Any, ...], list[Any]] = {}
        # a policy disabled in runs of a pack version: _RunKey + (policy,) -> runs
        self._disabled: dict[tuple[Any, ...], int] = {}
        # a policy's violations on an entity: _RunKey + (policy,) -> [advisory, mandatory]
        self._per_policy: dict[tuple[Any, ...], list[int]] = {}
        self._ranges: dict[tuple[Any, ...], list[Any]] = {}
        self._blocks: dict[tuple[Any, ...], list[Any]] = {}

    def add_runs(self, runs: Iterable[PackRun]) -> None:
        per_pack, per_group, disabled = self._per_pack, self._per_group, self._disabled
        for run in runs:
            for group in (*run.groups, ""):
                key = (run.sign, run.org_id, run.entity_type, run.entity_key, group, run.pack,
                       run.pack_version)
                found = per_pack.get(key)
                if found is None:
                    per_pack[key] = _PackVersionRun(run)
                else:
                    found.add(run)
                for policy in run.disabled:
                    skip = (*key, policy)
                    disabled[skip] = disabled.get(skip, 0) + 1
            for group in run.groups:
                for scope in ("", run.pack):
                    key = (run.sign, run.org_id, run.entity_type, run.entity_key, group, scope)
                    counts = per_group.get(key)
                    if counts is None:
                        per_group[key] = [run.errored, run.violations]
                    else:
                        counts[0] = counts[0] or run.errored
                        counts[1] += run.violations

    def add_found(self, found: Iterable[FoundViolations], blocks: Mapping[Entity, str]
                  ) -> None:
        """Add violations; ``blocks`` holds the first key of each one's block of
        entities (``''`` for the first block)."""
        per_policy, ranges, blocks_counts = self._per_policy, self._ranges, self._blocks
        for (sign, org_id, entity_type, entity_key, groups, pack, version, policy, level,
             id_range, count, first, last) in found:
            first_key = blocks[(org_id, entity_type, entity_key)]
            violations = sign * count
            advisory = count if level == "advisory" else 0
            mandatory = count if level == "mandatory" else 0
            for group in (*groups, ""):
                key = (sign, org_id, entity_type, entity_key, group, pack, version, policy)
                counts = per_policy.get(key)
                if counts is None:
                    per_policy[key] = [advisory, mandatory]
                else:
                    counts[0] += advisory
                    counts[1] += mandatory
                key = (org_id, group, entity_type, level, id_range)
                in_range = ranges.get(key)
                if in_range is None:
                    in_range = ranges[key] = [violations, None, None]
                else:
                    in_range[0] += violations
                if sign == 1:
                    _widen(in_range, first, last)
                key = (org_id, group, entity_type, level, first_key)
                in_block = blocks_counts.get(key)
                if in_block is None:
                    blocks_counts[key] = [violations]
                else:
                    in_block[0] += violations

    def changes(self) -> Changes:
        """The change of every count that changes."""
        per_pack = self._per_pack
        packs: dict[tuple[Any, ...], list[Any]] = {}
        for (sign, org_id, entity_type, _, group, pack, version), run in per_pack.items():
            row = _row(packs, (org_id, group, pack, version, entity_type), _PACK)
            row[1] += sign
            row[2] += sign * run.errored
            row[3] += sign * run.passed
            row[0] = _greatest(row[0], run.version_tag)
        policies: dict[tuple[Any, ...], list[Any]] = {}
        for key, (advisory, mandatory) in self._per_policy.items():
            sign, org_id, entity_type, _, group, pack, version, policy = key
            run = per_pack.get(key[:7])
            row = _row(policies, (org_id, group, pack, version, policy, entity_type), _POLICY)
            row[0] += sign * (run is None or not run.errored)
            row[1] += sign * advisory
            row[2] += sign * mandatory
        for key, runs in self._disabled.items():
            sign, org_id, entity_type, _, group, pack, version, policy = key
            run = per_pack[key[:7]]
            if not run.errored and runs == run.runs:
                _row(policies, (org_id, group, pack, version, policy, entity_type),
                     _POLICY)[3] += sign
        groups: dict[tuple[Any, ...], list[Any]] = {}
        for (sign, org_id, entity_type, _, group, scope), (errored, violations) in \
                self._per_group.items():
            row = _row(groups, (org_id, scope, group, entity_type), _GROUP)
            row[0] += sign
            row[1] += sign * errored
            row[2] += sign * (not errored and violations == 0)
        # a group's violations by level: the sum over the policies counted under it
        for (org_id, group, pack, _, _, entity_type), (_, advisory, mandatory, _) in \
                policies.items():
            if group:
                for scope in ("", pack):
                    row = _row(groups, (org_id, scope, group, entity_type), _GROUP)
                    row[3] += advisory
                    row[4] += mandatory
        changes = {"pack": _changed(packs, counts_from=1), "policy": _changed(policies),
                   "group": _changed(groups), "block": _changed(self._blocks)}
        # a range whose violations were added changes its bounds, even if not its count
        changes["range"] = {key: row for key, row in self._ranges.items()
                            if row[0] or row[2] is not None}
        return changes


def _greatest(tag: str | None, other: str | None) -> str | None:
    """The greater of two version tags, as SQL's max (None where there is none)."""
    return other if tag is None or (other is not None and other > tag) else tag


def _widen(row: list[Any], first: datetime | None, last: datetime | None) -> None:
    """Widen the bounds of when a range's violations were observed (fields 1 and 2)."""
    if first is not None and (row[1] is None or first < row[1]):
        row[1] = first
    if last is not None and (row[2] is None or last > row[2]):
        row[2] = last


def _changed(counts: dict[tuple[Any, ...], list[Any]], counts_from: int = 0
             ) -> dict[tuple[Any, ...], list[Any]]:
    return {key: row for key, row in counts.items() if any(row[counts_from:])}
