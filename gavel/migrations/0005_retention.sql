-- Retention deletes finished evaluations oldest first, in batches that continue
-- from where the previous one stopped: (finished_at, id) makes each batch an index
-- range scan instead of a scan of the whole history.
CREATE INDEX evaluations_finished ON evaluations (finished_at, id) WHERE status = 'finished';
