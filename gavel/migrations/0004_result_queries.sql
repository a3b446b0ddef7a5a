-- Indexes for the paged result queries (GET .../violations, .../evaluations).
-- Each ends with the id so that a page in (filter, sort, id) order is an index range
-- scan, and a count or a deep page can be answered from the index alone.

-- current violations: the default order (id), each common filter or sort key + id.
-- Entities (filter and sort) use current_violations_entity (org, type, key): an
-- entity's few rows are sorted by id on the fly.
CREATE INDEX current_violations_org_id ON current_violations (org_id, violation_id);
CREATE INDEX current_violations_level ON current_violations (org_id, level, violation_id);
CREATE INDEX current_violations_pack ON current_violations (org_id, pack, violation_id);
CREATE INDEX current_violations_policy ON current_violations (org_id, policy, violation_id);
CREATE INDEX current_violations_observed
    ON current_violations (org_id, observed_at, violation_id);
CREATE INDEX current_violations_urn ON current_violations (org_id, urn);
-- filter[group]: groups @> ARRAY[...]
CREATE INDEX current_violations_groups ON current_violations USING gin (groups);

-- evaluation history is read newest first (evaluations_org_recent); by entity, outcome
-- and kind in the same order; blocking evaluations are few, so a partial index
CREATE INDEX evaluations_entity_recent
    ON evaluations (org_id, entity_type, entity_key, received_at DESC, id);
CREATE INDEX evaluations_outcome_recent
    ON evaluations (org_id, outcome, received_at DESC, id);
CREATE INDEX evaluations_kind_recent
    ON evaluations (org_id, kind, received_at DESC, id);
CREATE INDEX evaluations_blocking_recent
    ON evaluations (org_id, received_at DESC, id) WHERE blocking;
