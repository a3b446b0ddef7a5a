-- A stack's last known resources are kept as json, compressed with lz4 where the server
-- has it.
--
-- The worker replaces them with every deployment it stores, and only an audit reads
-- them back, whole. As jsonb each write parsed the document into jsonb's binary form
-- and compressed it with pglz; as json it is only checked, and lz4 compresses it in a
-- fraction of pglz's time. Per update of a stack of 100 resources (22.7 KB of JSON),
-- Postgres's CPU: jsonb with pglz 0.67-0.99 ms, json with pglz 0.43-0.46 ms, json with
-- lz4 0.34 ms; stored 1.8 KB with pglz, 2.8 KB with lz4. Accounts keep jsonb: their
-- scans arrive in chunks, appended with jsonb's ||.

ALTER TABLE stacks ALTER COLUMN resources DROP DEFAULT;
ALTER TABLE stacks ALTER COLUMN resources TYPE json USING resources::json;
ALTER TABLE stacks ALTER COLUMN resources SET DEFAULT '[]';

DO $$
BEGIN
    ALTER TABLE stacks ALTER COLUMN resources SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    NULL;  -- a server built without lz4 keeps compressing with pglz
END
$$;
