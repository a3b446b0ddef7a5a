-- An account's current state is its latest scan, every chunk of it (gavel/scan_state.py):
-- the worker finds the chunks of a scan by account and scan id. Only the evaluations of
-- scans sent in more than one chunk are indexed.
--
-- An account whose latest scan was sent in chunks before this migration keeps the
-- current state of its last chunk until its next scan.

CREATE INDEX evaluations_scan_chunks ON evaluations (org_id, entity_key, scan_id, chunk)
    WHERE entity_type = 'account' AND chunks > 1;
