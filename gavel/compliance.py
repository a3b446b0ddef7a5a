"""Compliance over the current state: per pack version, per policy, per group.

Which packs ran on an entity, under which groups, whether they could run and how
many violations they left comes from the provenance of the entity's latest
evaluation; the counts by policy, level and group from its current violations. An
entity passes a pack (or a group) when the pack ran without error and left no
violation; an entity that ran one pack version twice (under groups with different
configs) counts once. A policy that a group's config disables is not run, so it is
neither evaluated nor passing on the entities it was disabled on (the provenance
records the disabled policies of each run).

The worker keeps these counts per org (``gavel.compliance_summary``), keyed by entity
type and by the group and pack a filter names, so a request reads a few rows per
pack version, policy and group, however many entities and violations the org has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from gavel import observed_landing

# $1 org id, $2 entity type, $3 group, $4 pack: a NULL filter matches everything.
# Rows of group '' (pack '') count entities under any group (any pack).
PACKS = """
SELECT pack AS name, pack_version AS version, max(version_tag) AS version_tag,
       sum(evaluated) AS evaluated, sum(errored) AS errored, sum(passing) AS passing
FROM compliance_pack_counts
WHERE org_id = $1 AND group_name = coalesce($3::text, '')
  AND ($2::text IS NULL OR entity_type = $2) AND ($4::text IS NULL OR pack = $4)
GROUP BY pack, pack_version
"""
POLICIES = """
SELECT pack, pack_version AS version, policy, sum(failing) AS failing,
       sum(advisory) AS advisory, sum(mandatory) AS mandatory, sum(skipped) AS skipped
FROM compliance_policy_counts
WHERE org_id = $1 AND group_name = coalesce($3::text, '')
  AND ($2::text IS NULL OR entity_type = $2) AND ($4::text IS NULL OR pack = $4)
GROUP BY pack, pack_version, policy
"""
# a group is listed when some entity was evaluated under it
GROUPS = """
SELECT group_name AS name, sum(evaluated) AS evaluated, sum(errored) AS errored,
       sum(passing) AS passing, sum(advisory) AS advisory, sum(mandatory) AS mandatory
FROM compliance_group_counts
WHERE org_id = $1 AND pack = coalesce($4::text, '')
  AND ($2::text IS NULL OR entity_type = $2) AND ($3::text IS NULL OR group_name = $3)
GROUP BY group_name
HAVING sum(evaluated) > 0
"""
PUBLISHED = """
SELECT pp.name AS pack, v.version, ARRAY(SELECT x ->> 'name'
                                         FROM jsonb_array_elements(v.policies) AS x) AS policies
FROM policy_pack_versions v JOIN policy_packs pp ON pp.id = v.pack_id
WHERE pp.org_id = $1 AND pp.name = ANY($2::text[])
"""


# a row as a query reads it, or as a dict with the same keys
Row = asyncpg.Record | Mapping[str, Any]

# The current violations that match filters the policy counts are kept by, per entity
# type and level: each current violation is counted there once under every group it is
# under and once under '' (any group). Exact, from a few rows per policy; the worker
# writes the counts in the transaction that writes the violations. $2 the group or '',
# then entity type, pack, policy (NULL: any): _KEPT_MATCHING.
_KEPT_MATCHING = """
FROM compliance_policy_counts
WHERE org_id = $1 AND group_name = $2 AND ($3::text IS NULL OR entity_type = $3)
  AND ($4::text IS NULL OR pack = $4) AND ($5::text IS NULL OR policy = $5)
"""
VIOLATION_COUNTS = f"""
SELECT entity_type, coalesce(sum(advisory), 0) AS advisory,
       coalesce(sum(mandatory), 0) AS mandatory
{_KEPT_MATCHING}
GROUP BY entity_type
"""
# The value (of a column, in its order) at which the ``$skip``-th matching violation
# (from 0) lies, how many violations come before that value's, and the value before it
# (NULL for the first), from ``per_value``: rows of (value, n) with n the matching
# violations of the value.
_RUNNING_SUM = """
SELECT value, before, prior FROM (
    SELECT value, n, sum(n) OVER (ORDER BY value {direction} ROWS UNBOUNDED PRECEDING) - n
                     AS before, lag(value) OVER (ORDER BY value {direction}) AS prior
    FROM ({per_value}) AS per_value) AS running
WHERE before + n > ${skip}
ORDER BY value {direction} LIMIT 1
"""
# Landing on a value of a leading sort column (pack or policy), from the same counts and
# filters ($6 the skip, $7 the level filter or NULL). The counts sort by the same
# collation as current_violations.
_LANDING = _RUNNING_SUM.format(direction="{direction}", skip=6, per_value=f"""
    SELECT {{column}} AS value,
           sum(CASE $7::text WHEN 'advisory' THEN advisory WHEN 'mandatory' THEN mandatory
               ELSE advisory + mandatory END) AS n
    {_KEPT_MATCHING}
    GROUP BY {{column}}""")
# A current violation is also counted in the range of ids it lies in (its id shifted
# right by ID_RANGE_BITS), per group ('' for any), entity type and level: landing on a
# range in the order of ids ($3 entity type, $4 level: NULL for any; $5 the skip).
ID_RANGE_BITS = 15
_RANGES_MATCHING = """
FROM violation_id_range_counts
WHERE org_id = $1 AND group_name = $2 AND ($3::text IS NULL OR entity_type = $3)
  AND ($4::text IS NULL OR level = $4)
GROUP BY id_range"""
_ID_LANDING = _RUNNING_SUM.format(direction="{direction}", skip=5, per_value=f"""
    SELECT id_range AS value, sum(violations) AS n
    {_RANGES_MATCHING}""")
# A current violation is also counted in the block of entities it lies in
# (gavel.entity_blocks), per group, entity type and level: landing on a block in the
# order of entities of one type ($3; $4 level or NULL, $5 the skip).
_ENTITY_LANDING = _RUNNING_SUM.format(direction="{direction}", skip=5, per_value="""
    SELECT first_key AS value, sum(violations) AS n
    FROM entity_block_counts
    WHERE org_id = $1 AND group_name = $2 AND entity_type = $3
      AND ($4::text IS NULL OR level = $4)
    GROUP BY first_key""")
# Each range of ids with its matching violations and the bounds of when they were
# observed (NULL bounds unknown), for gavel.observed_landing; the same filters.
_ID_RANGES = f"""
SELECT id_range, sum(violations) AS violations,
       CASE WHEN bool_and(first_observed_at IS NOT NULL) THEN min(first_observed_at) END
           AS first_observed_at,
       CASE WHEN bool_and(last_observed_at IS NOT NULL) THEN max(last_observed_at) END
           AS last_observed_at
{_RANGES_MATCHING}
"""
# leading sort columns whose rows per value the counts tell
LANDING_COLUMNS = ("pack", "policy")
COUNTED_FILTERS = frozenset({"entityType", "group", "pack", "policy", "level"})
VIOLATION_LEVELS = ("advisory", "mandatory")  # a violation's levels, each a count column
# the current_violations column that a key of ``KeptCounts.read`` holds at each place
COUNTED_COLUMNS = ("entity_type", "level")


@dataclass(frozen=True)
class EntityLanding:
    """A block of entities: its first key, the first key of the block read before it
    (None: none is), and the matching violations of the blocks before it. Blocks
    between the two hold no matching violation."""

    first_key: str
    prior_key: str | None
    before: int


@dataclass(frozen=True)
class KeptCounts:
    """How many current violations match a list's filters, read from the counts."""

    org_id: int
    group: str
    entity_type: str | None
    pack: str | None
    policy: str | None
    level: str | None

    @classmethod
    def of(cls, org_id: int, filters: Mapping[str, Any]) -> KeptCounts | None:
        """None unless the counts are kept by every filter (not by entity or urn)."""
        if not set(filters) <= COUNTED_FILTERS:
            return None
        return cls(org_id, filters.get("group", ""), filters.get("entityType"),
                   filters.get("pack"), filters.get("policy"), filters.get("level"))

    async def read(self, db: asyncpg.Pool | asyncpg.Connection) -> dict[tuple[str, str], int]:
        """(entity type, level) -> matching violations."""
        rows = await db.fetch(VIOLATION_COUNTS, self.org_id, self.group, self.entity_type,
                              self.pack, self.policy)
        return {(r["entity_type"], level): int(r[level]) for r in rows
                for level in VIOLATION_LEVELS if self.level in (None, level)}

    async def landing(self, db: asyncpg.Pool | asyncpg.Connection, column: str,
                      descending: bool, skip: int) -> tuple[str, int] | None:
        """The value of ``column`` (one of LANDING_COLUMNS) whose rows hold the
        ``skip``-th matching violation in the column's order, and the violations of the
        values before it; None past the end."""
        if column not in LANDING_COLUMNS:
            raise ValueError(f"no counts by {column}")
        sql = _LANDING.format(column=column, direction="DESC" if descending else "ASC")
        row = await db.fetchrow(sql, self.org_id, self.group, self.entity_type, self.pack,
                                self.policy, skip, self.level)
        return None if row is None else (row["value"], int(row["before"]))

    @property
    def _ranges_counted(self) -> bool:
        """Whether the ranges of ids and the blocks of entities are counted by the
        filters (not by pack or policy)."""
        return self.pack is None and self.policy is None

    async def id_landing(self, db: asyncpg.Pool | asyncpg.Connection, descending: bool,
                         skip: int) -> tuple[int, int] | None:
        """The id at which the range of ids that holds the ``skip``-th matching violation
        in the order of ids starts (its first id, or its last read in descending order),
        and the violations of the ranges before it; None past the end, or with a pack or
        policy filter (the ranges are not counted by them)."""
        if not self._ranges_counted:
            return None
        row = await db.fetchrow(_ID_LANDING.format(direction="DESC" if descending else "ASC"),
                                self.org_id, self.group, self.entity_type, self.level, skip)
        if row is None:
            return None
        first = int(row["value"]) << ID_RANGE_BITS
        return (first + (1 << ID_RANGE_BITS) - 1 if descending else first), int(row["before"])

    async def entity_landing(self, db: asyncpg.Pool | asyncpg.Connection, descending: bool,
                             skip: int) -> EntityLanding | None:
        """The block of entities (of the counts' entity type, which must be set) that
        holds the ``skip``-th matching violation in the order of entities, and the
        violations of the blocks before it; None past the end, or with a pack or policy
        filter (the blocks are not counted by them)."""
        if not self._ranges_counted or self.entity_type is None:
            return None
        row = await db.fetchrow(
            _ENTITY_LANDING.format(direction="DESC" if descending else "ASC"), self.org_id,
            self.group, self.entity_type, self.level, skip)
        if row is None:
            return None
        return EntityLanding(row["value"], row["prior"], int(row["before"]))

    async def id_ranges(self, db: asyncpg.Pool | asyncpg.Connection
                        ) -> list[observed_landing.IdRange] | None:
        """Every range of ids with matching violations, and when they were observed;
        None with a pack or policy filter (the ranges are not counted by them)."""
        if not self._ranges_counted:
            return None
        rows = await db.fetch(_ID_RANGES, self.org_id, self.group, self.entity_type,
                              self.level)
        return [observed_landing.IdRange(int(r["id_range"]), int(r["violations"]),
                                         r["first_observed_at"], r["last_observed_at"])
                for r in rows]


def counted_by(counts: Mapping[tuple[str, str], int], column: str) -> dict[str, int] | None:
    """The counts summed per value of ``column`` (entity_type or level), if they tell."""
    if column not in COUNTED_COLUMNS:
        return None
    place = COUNTED_COLUMNS.index(column)
    sums: dict[str, int] = {}
    for key, count in counts.items():
        sums[key[place]] = sums.get(key[place], 0) + count
    return sums


@dataclass
class PolicyTally:
    failing: int = 0
    skipped: int = 0  # entities the pack ran on with the policy disabled
    violations: dict[str, int] = field(default_factory=lambda: {"advisory": 0, "mandatory": 0})


def level_counts(row: Row) -> dict[str, int]:
    return {"advisory": int(row["advisory"]), "mandatory": int(row["mandatory"])}


def pack_views(pack_rows: Sequence[asyncpg.Record], policy_rows: Sequence[Row],
               published_rows: Sequence[asyncpg.Record]) -> list[dict[str, Any]]:
    """The packs of ``pack_rows`` as the API shows them, each with its policies' rows
    (``policy_rows``), the published ones in their published order (``published_rows``,
    as PUBLISHED reads them)."""
    published = {(r["pack"], r["version"]): list(r["policies"]) for r in published_rows}
    tallies: dict[tuple[str, int], dict[str, PolicyTally]] = {}
    for r in policy_rows:
        tallies.setdefault((r["pack"], r["version"]), {})[r["policy"]] = PolicyTally(
            int(r["failing"]), int(r["skipped"]), level_counts(r))
    return [_pack_view(r, published.get((r["name"], r["version"]), []),
                       tallies.get((r["name"], r["version"]), {})) for r in pack_rows]


def _pack_view(row: asyncpg.Record, published: list[str],
               tallies: Mapping[str, PolicyTally]) -> dict[str, Any]:
    ran_ok = int(row["evaluated"]) - int(row["errored"])
    # published order first; a policy only seen in violations (its version since
    # deleted) is still reported
    names = [*published, *sorted(set(tallies) - set(published))]
    policies = []
    totals = {"advisory": 0, "mandatory": 0}
    for name in names:
        tally = tallies.get(name, PolicyTally())
        for level, count in tally.violations.items():
            totals[level] += count
        evaluated = ran_ok - tally.skipped
        policies.append({"name": name, "entitiesEvaluated": evaluated,
                         "entitiesPassing": evaluated - tally.failing,
                         "violations": tally.violations})
    return {"name": row["name"], "version": row["version"], "versionTag": row["version_tag"],
            **entity_counts(row), "violations": totals, "policies": policies}


def entity_counts(row: asyncpg.Record) -> dict[str, int]:
    return {"entitiesEvaluated": int(row["evaluated"]), "entitiesPassing": int(row["passing"]),
            "entitiesErrored": int(row["errored"])}


async def compliance(pool: asyncpg.Pool, org_id: int, filters: Mapping[str, Any],
                     offset: int, limit: int) -> tuple[list[dict[str, Any]],
                                                        list[dict[str, Any]], int]:
    """(one page of packs, every group, the number of packs), from one snapshot."""
    args = (org_id, filters.get("entityType"), filters.get("group"), filters.get("pack"))
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                        readonly=True):
        pack_rows = await conn.fetch(PACKS, *args)
        policy_rows = await conn.fetch(POLICIES, *args)
        group_rows = await conn.fetch(GROUPS, *args)
        all_packs = sorted(pack_rows, key=lambda r: (r["name"], r["version"]))
        page = all_packs[offset:offset + limit]
        names = sorted({r["name"] for r in page})
        published_rows = await conn.fetch(PUBLISHED, org_id, names) if names else []
    groups = [{"name": r["name"], **entity_counts(r), "violations": level_counts(r)}
              for r in sorted(group_rows, key=lambda r: r["name"])]
    return pack_views(page, policy_rows, published_rows), groups, len(all_packs)
