-- A page by number deep into the current violations sorted by entity.
--
-- latest_evaluations.violations: how many violations the entity's latest evaluation
-- found, which are its current violations. Summed in the order of the entities, they
-- tell which entity holds a page of a sort led by the entity (without a filter the
-- counts are not kept by, other than the entity type), so that the page starts at that
-- entity and skips only its rows before the page (gavel.compliance.KeptCounts
-- .entity_landing). The worker writes the count with the entity's latest evaluation;
-- NULL is unknown (rows written otherwise), and such a page is skipped to.
ALTER TABLE latest_evaluations ADD COLUMN violations integer;

UPDATE latest_evaluations l
SET violations = (SELECT count(*) FROM current_violations c
                  WHERE c.org_id = l.org_id AND c.entity_type = l.entity_type
                    AND c.entity_key = l.entity_key);
