-- A page by number deep into the current violations sorted by observedAt.
--
-- The worker stores a violation with the time its evaluation was stored (observed_at)
-- and an id from a sequence in the same transaction, so ids rise with observed_at but
-- for the few transactions that overlap. Each range of ids
-- (violation_id_range_counts) now also bounds when its current violations were
-- observed: none before first_observed_at, none after last_observed_at. The worker
-- widens the bounds as it adds violations to a range and never narrows them as it takes
-- violations away, so they hold until the range's row is deleted (its count at zero).
-- A page by number of a sort by observedAt starts at a time that the counts of the
-- ranges wholly before it, and an exact count of the few ranges it falls within,
-- place exactly (gavel.observed_landing). NULL bounds are unknown: such a range may
-- hold violations observed at any time.
ALTER TABLE violation_id_range_counts
    ADD COLUMN first_observed_at timestamptz,
    ADD COLUMN last_observed_at timestamptz;

UPDATE violation_id_range_counts t
SET first_observed_at = b.first_observed_at, last_observed_at = b.last_observed_at
FROM (SELECT org_id, group_name, entity_type, level, violation_id >> 15 AS id_range,
             min(observed_at) AS first_observed_at, max(observed_at) AS last_observed_at
      FROM current_violations
           CROSS JOIN LATERAL unnest(array_append(groups, '')) AS group_name
      GROUP BY org_id, group_name, entity_type, level, violation_id >> 15) AS b
WHERE t.org_id = b.org_id AND t.group_name = b.group_name AND t.entity_type = b.entity_type
  AND t.level = b.level AND t.id_range = b.id_range;
