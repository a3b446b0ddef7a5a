"""Compliance aggregated from the current state itself, as it was computed before the
summary existed: every latest evaluation's provenance and every current violation,
read on each call. Tests compare the summary the worker keeps with it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from gavel import compliance

# $1 org id, $2 entity type, $3 group, $4 pack: a NULL filter matches everything.
# One pass over the latest evaluations: each one's provenance is reduced on its own
# (per pack version and per group: did it fail to run, how many violations did it
# leave), then those rows are counted. An entity that ran one pack version twice
# (under groups with different configs) counts once.
_RUNS = """
    WITH runs AS (
        SELECT p ->> 'name' AS pack, (p ->> 'version')::int AS version,
               p ->> 'versionTag' AS version_tag, p ->> 'status' = 'error' AS errored,
               coalesce((p ->> 'violations')::int, 0) AS violations, p -> 'groups' AS groups,
               coalesce(p -> 'disabledPolicies', '[]') AS disabled
        FROM jsonb_array_elements(e.packs) AS p
        WHERE ($4::text IS NULL OR p ->> 'name' = $4)
          AND ($3::text IS NULL
               OR p -> 'groups' @> jsonb_build_array(jsonb_build_object('name', $3::text))))
"""
ENTITIES = f"""
SELECT r.kind, r.name, r.version, max(r.version_tag) AS version_tag, count(*) AS evaluated,
       count(*) FILTER (WHERE r.errored) AS errored,
       count(*) FILTER (WHERE NOT r.errored AND r.violations = 0) AS passing
FROM latest_evaluations le
JOIN evaluations e ON e.id = le.evaluation_id
CROSS JOIN LATERAL ({_RUNS}
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
# per policy: entities failing it (those whose pack version ran without error), and its
# violations by level
POLICIES = f"""
SELECT pack, pack_version AS version, policy,
       count(*) FILTER (WHERE NOT coalesce(errored, false)) AS failing,
       sum(advisory) AS advisory, sum(mandatory) AS mandatory
FROM (SELECT v.pack, v.pack_version, v.policy,
             count(*) FILTER (WHERE v.level = 'advisory') AS advisory,
             count(*) FILTER (WHERE v.level = 'mandatory') AS mandatory,
             (SELECT bool_or(p ->> 'status' = 'error')
              FROM latest_evaluations le JOIN evaluations e ON e.id = le.evaluation_id
                   CROSS JOIN LATERAL jsonb_array_elements(e.packs) AS p
              WHERE (le.org_id, le.entity_type, le.entity_key)
                    = (v.org_id, v.entity_type, v.entity_key)
                AND p ->> 'name' = v.pack AND (p ->> 'version')::int = v.pack_version
                AND ($3::text IS NULL OR p -> 'groups'
                     @> jsonb_build_array(jsonb_build_object('name', $3::text)))) AS errored
      FROM current_violations v {_VIOLATIONS_WHERE}
      GROUP BY v.org_id, v.pack, v.pack_version, v.policy, v.entity_type,
               v.entity_key) AS per_entity
GROUP BY 1, 2, 3
"""
# per policy: entities whose pack version ran without error with the policy disabled in
# every run of it
SKIPPED = f"""
SELECT s.pack, s.version, s.policy, count(*) AS skipped
FROM latest_evaluations le
JOIN evaluations e ON e.id = le.evaluation_id
CROSS JOIN LATERAL ({_RUNS}
    SELECT pack, version, policy
    FROM runs CROSS JOIN LATERAL jsonb_array_elements_text(runs.disabled) AS policy
    GROUP BY pack, version, policy
    HAVING (count(*), false) = (SELECT count(*), bool_or(r.errored) FROM runs AS r
                                WHERE (r.pack, r.version) = (runs.pack, runs.version))) AS s
WHERE le.org_id = $1 AND ($2::text IS NULL OR le.entity_type = $2)
GROUP BY 1, 2, 3
"""
GROUP_VIOLATIONS = f"""
SELECT group_name, count(*) FILTER (WHERE level = 'advisory') AS advisory,
       count(*) FILTER (WHERE level = 'mandatory') AS mandatory
FROM current_violations CROSS JOIN LATERAL unnest(groups) AS group_name
{_VIOLATIONS_WHERE} AND ($3::text IS NULL OR group_name = $3)
GROUP BY group_name
"""


async def compliance_from_current_state(pool: asyncpg.Pool, org_id: int,
                                        filters: Mapping[str, Any]) -> tuple[
        list[dict[str, Any]], list[dict[str, Any]]]:
    """(every pack, every group) as ``gavel.compliance.compliance`` answers them."""
    args = (org_id, filters.get("entityType"), filters.get("group"), filters.get("pack"))
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                        readonly=True):
        entities = await conn.fetch(ENTITIES, *args)
        policy_rows = _with_skipped(await conn.fetch(POLICIES, *args),
                                    await conn.fetch(SKIPPED, *args))
        group_rows = await conn.fetch(GROUP_VIOLATIONS, *args)
        pack_rows = sorted((r for r in entities if r["kind"] == "pack"),
                           key=lambda r: (r["name"], r["version"]))
        names = sorted({r["name"] for r in pack_rows})
        published_rows = await conn.fetch(compliance.PUBLISHED, org_id, names)
    packs = compliance.pack_views(pack_rows, policy_rows, published_rows)
    levels = {r["group_name"]: compliance.level_counts(r) for r in group_rows}
    groups = [{"name": r["name"], **compliance.entity_counts(r),
               "violations": levels.get(r["name"], {"advisory": 0, "mandatory": 0})}
              for r in sorted((r for r in entities if r["kind"] == "group"),
                              key=lambda r: r["name"])]
    return packs, groups


def _with_skipped(failing: Sequence[asyncpg.Record],
                  skipped: Sequence[asyncpg.Record]) -> list[dict[str, Any]]:
    """The policy rows of both queries, as the summary's POLICIES reads them."""
    rows: dict[tuple[str, int, str], dict[str, Any]] = {}
    for r in failing:
        rows[(r["pack"], r["version"], r["policy"])] = {**dict(r), "skipped": 0}
    for r in skipped:
        key = (r["pack"], r["version"], r["policy"])
        rows.setdefault(key, {"pack": key[0], "version": key[1], "policy": key[2],
                              "failing": 0, "advisory": 0, "mandatory": 0})
        rows[key]["skipped"] = r["skipped"]
    return list(rows.values())
