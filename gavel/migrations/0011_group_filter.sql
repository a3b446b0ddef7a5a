-- filter[group] (groups @> ARRAY[...]) at any size of group.
--
-- A small group is found through a GIN index on (org, groups) (btree_gin): the posting
-- list of the org's rows in the group, so another org's members of a group of the same
-- name cost nothing. The GIN index on groups alone returned every org's rows, and a big
-- group (a third of a million rows) had to be collected entirely before the first row.
-- A big group is read in the list's order instead: the (org, id) index carries the
-- groups, so the rows of the group are picked from the index alone, without visiting
-- the table. Both replace an index, so current_violations keeps as many.
CREATE EXTENSION IF NOT EXISTS btree_gin;

DROP INDEX current_violations_groups;
CREATE INDEX current_violations_groups ON current_violations USING gin (org_id, groups);

DROP INDEX current_violations_org_id;
CREATE INDEX current_violations_org_id
    ON current_violations (org_id, violation_id) INCLUDE (groups);
