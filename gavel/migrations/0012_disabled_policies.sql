-- Policies that a group's config disables are not run, so compliance no longer counts
-- them as evaluated (and passing) on the entities they were disabled on; and an entity
-- fails a policy only where its pack version ran without error, so that no policy
-- fails more often than it is evaluated.
--
-- current_pack_results.disabled: the pack's policies disabled in that run, from the
-- provenance's disabledPolicies. compliance_policy_counts.skipped: entities whose pack
-- ran without error with the policy disabled in every run of the pack version (under
-- the row's group). Evaluations stored before this recorded no disabled policies, so
-- their rows start empty and an entity's next evaluation (or an audit) fills them.
ALTER TABLE current_pack_results ADD COLUMN disabled text[] NOT NULL DEFAULT '{}';
ALTER TABLE compliance_policy_counts ADD COLUMN skipped integer NOT NULL DEFAULT 0;

-- failing, counted again without the entities whose pack version errored (the worker
-- takes away what an entity's rows contributed by the same rule)
UPDATE compliance_policy_counts t SET failing = n.failing
FROM (
    SELECT v.org_id, v.group_name, v.pack, v.pack_version, v.policy, v.entity_type,
           count(*) FILTER (WHERE NOT coalesce(r.errored, false)) AS failing
    FROM (SELECT DISTINCT org_id, entity_type, entity_key, group_name, pack, pack_version,
                 policy
          FROM current_violations
               CROSS JOIN LATERAL unnest(array_append(groups, '')) AS group_name) AS v
    LEFT JOIN (SELECT org_id, entity_type, entity_key, group_name, pack, pack_version,
                      bool_or(errored) AS errored
               FROM current_pack_results
                    CROSS JOIN LATERAL unnest(array_append(groups, '')) AS group_name
               GROUP BY org_id, entity_type, entity_key, group_name, pack, pack_version) AS r
           USING (org_id, entity_type, entity_key, group_name, pack, pack_version)
    GROUP BY v.org_id, v.group_name, v.pack, v.pack_version, v.policy, v.entity_type) AS n
WHERE (t.org_id, t.group_name, t.pack, t.pack_version, t.policy, t.entity_type)
      = (n.org_id, n.group_name, n.pack, n.pack_version, n.policy, n.entity_type)
  AND t.failing <> n.failing;
