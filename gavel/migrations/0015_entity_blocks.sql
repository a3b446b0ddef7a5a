-- A page by number deep into the current violations sorted by entity.
--
-- Entities sort by (entity_type, entity_key); skipping half a million rows of that
-- order took 57-66 ms, and 420-530 ms when each entity's rows are sorted further. An
-- org's entities of one type are cut into blocks of consecutive keys, each starting at
-- a key of entity_blocks (the first block at '', which has no row), and
-- entity_block_counts tells how many current violations lie in each block, per group
-- ('' for any group), entity type and level, as violation_id_range_counts does for
-- ranges of ids. The worker keeps the counts in the transaction that replaces an
-- entity's current violations, holding its org's advisory lock shared, and splits a
-- block in two at its middle entity, holding that lock alone, when one level's
-- violations in it pass 8,192 (gavel.entity_blocks). A page by number of a sort led by
-- entity (or by level, then entity) starts at the block that holds it. Here the blocks
-- start every 4,096 current violations of each org and entity type.
CREATE TABLE entity_blocks (
    org_id       bigint NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    entity_type  text NOT NULL,
    first_key    text NOT NULL,
    PRIMARY KEY (org_id, entity_type, first_key)
);

CREATE TABLE entity_block_counts (
    org_id       bigint NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    group_name   text NOT NULL,
    entity_type  text NOT NULL,
    level        text NOT NULL,
    first_key    text NOT NULL,
    violations   integer NOT NULL,
    PRIMARY KEY (org_id, group_name, entity_type, level, first_key)
);

INSERT INTO entity_blocks (org_id, entity_type, first_key)
SELECT DISTINCT org_id, entity_type, entity_key FROM (
    SELECT org_id, entity_type, entity_key,
           row_number() OVER (PARTITION BY org_id, entity_type ORDER BY entity_key) AS n
    FROM current_violations) AS numbered
WHERE n % 4096 = 1 AND n > 1;

INSERT INTO entity_block_counts (org_id, group_name, entity_type, level, first_key,
                                 violations)
SELECT c.org_id, group_name, c.entity_type, c.level, b.first_key, count(*)
FROM current_violations c
     CROSS JOIN LATERAL (SELECT coalesce(max(first_key), '') AS first_key
                         FROM entity_blocks e
                         WHERE e.org_id = c.org_id AND e.entity_type = c.entity_type
                           AND e.first_key <= c.entity_key) AS b
     CROSS JOIN LATERAL unnest(array_append(c.groups, '')) AS group_name
GROUP BY c.org_id, group_name, c.entity_type, c.level, b.first_key;
