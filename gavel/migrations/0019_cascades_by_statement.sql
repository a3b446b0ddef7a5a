-- The rows the worker's store writes for every violation are no longer checked one by
-- one against their parent; deleting the parent still deletes them, a statement at a time.
--
-- A foreign key checks each inserted row with a query of its own, which locks the parent
-- row: every violation stored locked its evaluation, and every current violation and
-- pack run its org, each once per row. In the store at 38 violations per evaluation
-- those checks took about a fifth of Postgres's CPU. The rows cannot lack their parent:
-- * a violation is inserted by the statement that inserts or finishes its evaluation
--   (joined to the rows it stored), and no statement changes its evaluation_id;
-- * current violations and pack runs are copied from an evaluation of the same org,
--   which itself still references its org.
-- What the keys' ON DELETE CASCADE did, a trigger per statement now does: retention
-- deleting evaluations, and the deletion of an org (through its evaluations).

ALTER TABLE violations DROP CONSTRAINT violations_evaluation_id_fkey;
ALTER TABLE current_violations DROP CONSTRAINT current_violations_org_id_fkey;
ALTER TABLE current_pack_results DROP CONSTRAINT current_pack_results_org_id_fkey;

CREATE FUNCTION delete_violations_of_evaluations() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM violations v USING deleted_evaluations d WHERE v.evaluation_id = d.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER evaluations_delete_violations
    AFTER DELETE ON evaluations
    REFERENCING OLD TABLE AS deleted_evaluations
    FOR EACH STATEMENT EXECUTE FUNCTION delete_violations_of_evaluations();

CREATE FUNCTION delete_current_state_of_orgs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM current_violations c USING deleted_orgs d WHERE c.org_id = d.id;
    DELETE FROM current_pack_results c USING deleted_orgs d WHERE c.org_id = d.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER orgs_delete_current_state
    AFTER DELETE ON orgs
    REFERENCING OLD TABLE AS deleted_orgs
    FOR EACH STATEMENT EXECUTE FUNCTION delete_current_state_of_orgs();
