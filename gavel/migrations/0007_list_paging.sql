-- Indexes for continuing the result lists by sort key (page[after] in next links),
-- for sorts led by the enforcement level, and for filter[blocking]=false.
--
-- A sort led by the level and followed by another key reads one branch per level, each
-- a range of an index on (org, level, key, id) read forwards or backwards: one index
-- serves both directions of the key. Without these a branch reads the key's own index
-- and skips the other level's rows, which costs as many rows as the org holds when one
-- level is rare there or clustered in the key's order (a policy has one level).
-- current_violations is rewritten for every evaluated entity, so these four are the
-- write cost of that feature; bench/README.md gives the figures.
CREATE INDEX current_violations_level_observed
    ON current_violations (org_id, level, observed_at, violation_id);
CREATE INDEX current_violations_level_pack
    ON current_violations (org_id, level, pack, violation_id);
CREATE INDEX current_violations_level_policy
    ON current_violations (org_id, level, policy, violation_id);
CREATE INDEX current_violations_level_entity
    ON current_violations (org_id, level, entity_type, entity_key, violation_id);

-- The entity index gains the id, so that continuing a sort by entity after
-- (type, key, id) is one index range; an entity's rows are found by its prefix as before.
DROP INDEX current_violations_entity;
CREATE INDEX current_violations_entity
    ON current_violations (org_id, entity_type, entity_key, violation_id);

-- Finished evaluations that do not block (pending ones, whose blocking is unknown, are
-- in neither this nor evaluations_blocking_recent).
CREATE INDEX evaluations_not_blocking_recent
    ON evaluations (org_id, received_at DESC, id) WHERE NOT blocking;
