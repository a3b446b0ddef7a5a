-- A page by number deep into the evaluation history, and its exact total.
--
-- The history is read newest first (evaluations_org_recent); a page by number skipped
-- every evaluation before it (42 ms half way into 500,000, 76 ms 90 % deep), and the
-- total past 10,000 was the planner's estimate. evaluation_counts tells how many
-- evaluations an org received in each hour and each day (UTC), per entity type and
-- kind: a page by number sums the days, then that day's hours, and reads from the hour
-- that holds it, from whichever end of the list is nearer.
--
-- A deferred trigger keeps the counts as rows are inserted, deleted or moved, whoever
-- writes them (the API's ingest, the worker's store, retention, an org's deletion). It
-- runs as the transaction commits, so a count row is locked only while a transaction
-- commits: counted as they are inserted, the rows of an hour would stay locked for the
-- rest of a worker's store and hold up every other writer of the org in that hour. It
-- first takes the org's advisory lock (class 0x67766563, the org id), so one
-- transaction at a time counts an org's evaluations, whatever order its rows come in
-- (two stores locking an hour and a day each in turn could wait for each other). A
-- transaction that writes evaluations of several orgs writes them in the order of their
-- ids (the worker's store does) or takes their locks first in that order (retention).
LOCK TABLE evaluations IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE evaluation_counts (
    org_id       bigint NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    span         text NOT NULL CHECK (span IN ('hour', 'day')),
    received     timestamptz NOT NULL,   -- the start of the hour or day, in UTC
    entity_type  text NOT NULL,
    kind         text NOT NULL,
    evaluations  bigint NOT NULL,
    PRIMARY KEY (org_id, span, received, entity_type, kind)
);

INSERT INTO evaluation_counts (org_id, span, received, entity_type, kind, evaluations)
SELECT e.org_id, s.span, date_trunc(s.span, e.received_at, 'UTC'), e.entity_type, e.kind,
       count(*)
FROM evaluations e CROSS JOIN (VALUES ('hour'), ('day')) AS s(span)
GROUP BY 1, 2, 3, 4, 5;

-- A count that falls to zero goes; an org deleted with its evaluations has no counts
-- left (they cascade).
CREATE FUNCTION count_evaluation() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    width text;
    left_over bigint;
BEGIN
    IF TG_OP = 'DELETE' AND NOT EXISTS (SELECT 1 FROM orgs WHERE id = OLD.org_id) THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_advisory_xact_lock(x'67766563'::int, (OLD.org_id & 2147483647)::int);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_advisory_xact_lock(x'67766563'::int, (NEW.org_id & 2147483647)::int);
    END IF;
    FOREACH width IN ARRAY ARRAY['hour', 'day'] LOOP
        IF TG_OP <> 'INSERT' THEN
            UPDATE evaluation_counts SET evaluations = evaluations - 1
            WHERE org_id = OLD.org_id AND span = width
              AND received = date_trunc(width, OLD.received_at, 'UTC')
              AND entity_type = OLD.entity_type AND kind = OLD.kind
            RETURNING evaluations INTO left_over;
            IF left_over = 0 THEN
                DELETE FROM evaluation_counts
                WHERE org_id = OLD.org_id AND span = width
                  AND received = date_trunc(width, OLD.received_at, 'UTC')
                  AND entity_type = OLD.entity_type AND kind = OLD.kind;
            END IF;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            INSERT INTO evaluation_counts AS c (org_id, span, received, entity_type, kind,
                                                evaluations)
            VALUES (NEW.org_id, width, date_trunc(width, NEW.received_at, 'UTC'),
                    NEW.entity_type, NEW.kind, 1)
            ON CONFLICT (org_id, span, received, entity_type, kind)
            DO UPDATE SET evaluations = c.evaluations + 1;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER evaluations_counted
    AFTER INSERT OR DELETE OR UPDATE OF org_id, received_at, entity_type, kind ON evaluations
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION count_evaluation();
