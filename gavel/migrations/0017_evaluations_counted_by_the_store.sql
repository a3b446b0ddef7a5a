-- The worker's store counts the evaluations it inserts, a statement per transaction.
--
-- The trigger of 0016 counts each row as its transaction commits: two upserts per
-- evaluation. A batch of a worker's store inserts dozens of evaluations received in the
-- same hour, so the trigger updated the same two count rows dozens of times in one
-- transaction, each update a new version of the row that the next one had to find (in a
-- pipeline of stack events, about a tenth of Postgres's time). The store now adds each
-- count once, by how many rows of it the batch inserted, as its last statement (so the
-- counts are still locked only while it commits, after the org's advisory lock), and
-- says so for its own transaction: SET LOCAL gavel.evaluations_counted = 'by statement'.
-- The trigger leaves the rows of such a transaction alone; it is not even queued for
-- them. Every other writer (the API's ingest, retention, an org's deletion) is counted
-- by the trigger as before.

DROP TRIGGER evaluations_counted ON evaluations;

CREATE CONSTRAINT TRIGGER evaluations_counted
    AFTER INSERT OR DELETE OR UPDATE OF org_id, received_at, entity_type, kind ON evaluations
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (current_setting('gavel.evaluations_counted', true) IS DISTINCT FROM 'by statement')
    EXECUTE FUNCTION count_evaluation();
