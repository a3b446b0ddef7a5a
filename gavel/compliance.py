"""Compliance summary over the current state: per pack version, per policy, per group.

Which packs ran on an entity, under which groups, whether they could run and how
many violations they left comes from the provenance (``packs``) of the entity's
latest evaluation; the counts by policy, level and group come from
``current_violations``. An entity passes a pack (or a group) when the pack ran
without error and left no violation. Policies disabled by a group's config are not
recorded in the provenance, so they count as passing. Cost grows with the org's
current state (one pass over its latest evaluations, two over its violations).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

# $1 org id, $2 entity type, $3 group, $4 pack: a NULL filter matches everything.
# One pass over the latest evaluations: each one's provenance is reduced on its own
# (per pack version and per group: did it fail to run, how many violations did it
# leave), then those rows are counted. An entity that ran one pack version twice
# (under groups with different configs) counts once.
ENTITIES = """
SELECT r.kind, r.name, r.version, max(r.version_tag) AS version_tag, count(*) AS evaluated,
       count(*) FILTER (WHERE r.errored) AS errored,
       count(*) FILTER (WHERE NOT r.errored AND r.violations = 0) AS passing
FROM latest_evaluations le
JOIN evaluations e ON e.id = le.evaluation_id
CROSS JOIN LATERAL (
    WITH runs AS (
        SELECT p ->> 'name' AS pack, (p ->> 'version')::int AS version,
               p ->> 'versionTag' AS version_tag, p ->> 'status' = 'error' AS errored,
               coalesce((p ->> 'violations')::int, 0) AS violations, p -> 'groups' AS groups
        FROM jsonb_array_elements(e.packs) AS p
        WHERE ($4::text IS NULL OR p ->> 'name' = $4)
          AND ($3::text IS NULL
               OR p -> 'groups' @> jsonb_build_array(jsonb_build_object('name', $3::text))))
    SELECT 'pack' AS kind, pack AS name, version, max(version_tag) AS version_tag,
           bool_or(errored) AS errored, sum(violations) AS violations
    FROM runs GROUP BY pack, version
    UNION ALL
    SELECT 'group', g ->> 'name', NULL, NULL, bool_or(errored), sum(violations)
    FROM runs CROSS JOIN LATERAL jsonb_array_elements(runs.groups) AS g
    WHERE $3::text IS NULL OR g ->> 'name' = $3
    GROUP BY g ->> 'name') AS r
WHERE le.org_id = $1 AND ($2::text IS NULL OR le.entity_type = $2)
GROUP BY r.kind, r.name, r.version
"""
_VIOLATIONS_WHERE = """
WHERE org_id = $1 AND ($2::text IS NULL OR entity_type = $2)
  AND ($3::text IS NULL OR groups @> ARRAY[$3::text]) AND ($4::text IS NULL OR pack = $4)
"""
# per policy: entities failing it, violations by level
POLICIES = f"""
SELECT pack, pack_version AS version, policy, count(*) AS failing,
       sum(advisory) AS advisory, sum(mandatory) AS mandatory
FROM (SELECT pack, pack_version, policy,
             count(*) FILTER (WHERE level = 'advisory') AS advisory,
             count(*) FILTER (WHERE level = 'mandatory') AS mandatory
      FROM current_violations {_VIOLATIONS_WHERE}
      GROUP BY pack, pack_version, policy, entity_type, entity_key) AS per_entity
GROUP BY 1, 2, 3
"""
GROUP_VIOLATIONS = f"""
SELECT group_name, count(*) FILTER (WHERE level = 'advisory') AS advisory,
       count(*) FILTER (WHERE level = 'mandatory') AS mandatory
FROM current_violations CROSS JOIN LATERAL unnest(groups) AS group_name
{_VIOLATIONS_WHERE} AND ($3::text IS NULL OR group_name = $3)
GROUP BY group_name
"""
PUBLISHED = """
SELECT pp.name AS pack, v.version, ARRAY(SELECT x ->> 'name'
                                         FROM jsonb_array_elements(v.policies) AS x) AS policies
FROM policy_pack_versions v JOIN policy_packs pp ON pp.id = v.pack_id
WHERE pp.org_id = $1 AND pp.name = ANY($2::text[])
"""


@dataclass
class PolicyTally:
    failing: int = 0
    violations: dict[str, int] = field(default_factory=lambda: {"advisory": 0, "mandatory": 0})


def _violations(row: asyncpg.Record) -> dict[str, int]:
    return {"advisory": int(row["advisory"]), "mandatory": int(row["mandatory"])}


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
        policies.append({"name": name, "entitiesEvaluated": ran_ok,
                         "entitiesPassing": ran_ok - tally.failing,
                         "violations": tally.violations})
    return {"name": row["name"], "version": row["version"], "versionTag": row["version_tag"],
            **_entities(row), "violations": totals, "policies": policies}


def _entities(row: asyncpg.Record) -> dict[str, int]:
    return {"entitiesEvaluated": int(row["evaluated"]), "entitiesPassing": int(row["passing"]),
            "entitiesErrored": int(row["errored"])}


async def _read(conn: asyncpg.Connection, args: tuple[Any, ...]) -> tuple[
        list[asyncpg.Record], list[asyncpg.Record], list[asyncpg.Record]]:
    # These read the org's whole current state: JIT compiling costs more than it saves
    # here, and a larger work_mem keeps the per-entity aggregates off disk.
    await conn.execute("SET LOCAL jit = off")
    await conn.execute("SET LOCAL work_mem = '64MB'")
    entities = await conn.fetch(ENTITIES, *args)
    policies = await conn.fetch(POLICIES, *args)
    group_violations = await conn.fetch(GROUP_VIOLATIONS, *args)
    return entities, policies, group_violations


async def compliance(pool: asyncpg.Pool, org_id: int, filters: Mapping[str, Any],
                     offset: int, limit: int) -> tuple[list[dict[str, Any]],
                                                        list[dict[str, Any]], int]:
    """(one page of packs, every group, the number of packs), from one snapshot."""
    args = (org_id, filters.get("entityType"), filters.get("group"), filters.get("pack"))
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                        readonly=True):
        entities, policy_rows, group_rows = await _read(conn, args)
        all_packs = sorted((r for r in entities if r["kind"] == "pack"),
                           key=lambda r: (r["name"], r["version"]))
        page = all_packs[offset:offset + limit]
        names = sorted({r["name"] for r in page})
        published_rows = await conn.fetch(PUBLISHED, org_id, names) if names else []
    published = {(r["pack"], r["version"]): list(r["policies"]) for r in published_rows}
    tallies: dict[tuple[str, int], dict[str, PolicyTally]] = {}
    for r in policy_rows:
        tallies.setdefault((r["pack"], r["version"]), {})[r["policy"]] = PolicyTally(
            int(r["failing"]), _violations(r))
    packs = [_pack_view(r, published.get((r["name"], r["version"]), []),
                        tallies.get((r["name"], r["version"]), {})) for r in page]
    levels = {r["group_name"]: _violations(r) for r in group_rows}
    groups = [{"name": r["name"], **_entities(r),
               "violations": levels.get(r["name"], {"advisory": 0, "mandatory": 0})}
              for r in sorted((r for r in entities if r["kind"] == "group"),
                              key=lambda r: r["name"])]
    return packs, groups, len(all_packs)
