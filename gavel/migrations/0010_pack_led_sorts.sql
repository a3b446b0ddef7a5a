-- Indexes for the two-key sorts led by the pack that the violations list serves from an
-- index: pack then policy, and pack then observedAt (either direction of each key).
--
-- A sort led by the pack and followed by another key reads one branch per pack of the
-- org (listed first by a loose scan of an index led by (org, pack)), each a range of an
-- index on (org, pack, key, id) read forwards or backwards. Without these, Postgres read
-- the pack index and sorted each pack's rows (50,000 a pack in the benchmark: about
-- 100 ms a page). current_violations is rewritten for every evaluated entity, so these
-- two are the write cost of those sorts; bench/README.md gives the figures. Other sorts
-- led by the pack (by entity or level) still sort each pack's rows.
CREATE INDEX current_violations_pack_policy
    ON current_violations (org_id, pack, policy, violation_id);
CREATE INDEX current_violations_pack_observed
    ON current_violations (org_id, pack, observed_at, violation_id);
