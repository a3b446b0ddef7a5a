-- A page by number deep into the current violations in their default order (by id).
--
-- Skipping half a million rows with OFFSET took 50-150 ms, however narrow the index.
-- These counts tell how many current violations lie in each range of 32,768 ids
-- (id_range = violation_id >> 15), per group ('' for any group, as the compliance
-- counts), entity type and level, so that such a page starts at the range that holds
-- it and skips at most one range's rows. The worker keeps them in the transaction that
-- replaces an entity's current violations (gavel.compliance_summary); a range whose
-- count drops to zero loses its row, so the table holds about as many rows per key as
-- ranges of ids still current.
CREATE TABLE violation_id_range_counts (
    org_id       bigint NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    group_name   text NOT NULL,
    entity_type  text NOT NULL,
    level        text NOT NULL,
    id_range     bigint NOT NULL,
    violations   integer NOT NULL,
    PRIMARY KEY (org_id, group_name, entity_type, level, id_range)
);

INSERT INTO violation_id_range_counts (org_id, group_name, entity_type, level, id_range,
                                       violations)
SELECT org_id, group_name, entity_type, level, violation_id >> 15, count(*)
FROM current_violations CROSS JOIN LATERAL unnest(array_append(groups, '')) AS group_name
GROUP BY org_id, group_name, entity_type, level, violation_id >> 15;
