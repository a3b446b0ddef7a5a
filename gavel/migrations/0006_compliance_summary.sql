-- The compliance summary (gavel/compliance_summary.py), kept by the worker in the
-- transaction that advances each entity's current state, and filled here from the
-- current state already stored.

-- one row per pack run of each entity's latest evaluation: its provenance
CREATE TABLE current_pack_results (
    org_id         bigint NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    entity_type    text NOT NULL,
    entity_key     text NOT NULL,
    evaluation_id  uuid NOT NULL,
    pack           text NOT NULL,
    pack_version   integer NOT NULL,
    version_tag    text,
    groups         text[] NOT NULL,     -- the groups the pack ran under
    errored        boolean NOT NULL,    -- the pack could not be evaluated
    violations     integer NOT NULL     -- violations it left
);
CREATE INDEX current_pack_results_entity
    ON current_pack_results (org_id, entity_type, entity_key);

-- Counts over the org's entities, one row per key that some entity contributes to.
-- group_name '' is "under any group", pack '' is "any pack": each combination of the
-- compliance filters (entity type, group, pack) reads rows of one key prefix.

-- entities that ran a pack version: all of them, errored, passing (ran, no violation)
CREATE TABLE compliance_pack_counts (
    org_id        bigint NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    group_name    text NOT NULL,
    pack          text NOT NULL,
    pack_version  integer NOT NULL,
    entity_type   text NOT NULL,
    version_tag   text,
    evaluated     integer NOT NULL,
    errored       integer NOT NULL,
    passing       integer NOT NULL,
    PRIMARY KEY (org_id, group_name, pack, pack_version, entity_type)
);

-- entities with at least one violation of a policy, and its violations by level
CREATE TABLE compliance_policy_counts (
    org_id        bigint NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    group_name    text NOT NULL,
    pack          text NOT NULL,
    pack_version  integer NOT NULL,
    policy        text NOT NULL,
    entity_type   text NOT NULL,
    failing       integer NOT NULL,
    advisory      integer NOT NULL,
    mandatory     integer NOT NULL,
    PRIMARY KEY (org_id, group_name, pack, pack_version, policy, entity_type)
);

-- entities evaluated under a group (by one pack or any), and the group's violations
CREATE TABLE compliance_group_counts (
    org_id        bigint NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    pack          text NOT NULL,
    group_name    text NOT NULL,
    entity_type   text NOT NULL,
    evaluated     integer NOT NULL,
    errored       integer NOT NULL,
    passing       integer NOT NULL,
    advisory      integer NOT NULL,
    mandatory     integer NOT NULL,
    PRIMARY KEY (org_id, pack, group_name, entity_type)
);

INSERT INTO current_pack_results (org_id, entity_type, entity_key, evaluation_id, pack,
                                  pack_version, version_tag, groups, errored, violations)
SELECT e.org_id, e.entity_type, e.entity_key, e.id, p ->> 'name', (p ->> 'version')::int,
       p ->> 'versionTag',
       ARRAY(SELECT g ->> 'name' FROM jsonb_array_elements(p -> 'groups') AS g),
       coalesce(p ->> 'status' = 'error', false), coalesce((p ->> 'violations')::int, 0)
FROM latest_evaluations le
JOIN evaluations e ON e.id = le.evaluation_id
CROSS JOIN LATERAL jsonb_array_elements(e.packs) AS p;

CREATE TEMPORARY TABLE compliance_backfill ON COMMIT DROP AS
WITH per_pack AS (
    SELECT org_id, entity_type, group_name, pack, pack_version,
           max(version_tag) AS version_tag, bool_or(errored) AS errored,
           sum(violations) AS violations
    FROM current_pack_results CROSS JOIN LATERAL unnest(array_append(groups, '')) AS group_name
    GROUP BY org_id, entity_type, entity_key, group_name, pack, pack_version),
per_group AS (
    SELECT org_id, entity_type, group_name, scope, bool_or(errored) AS errored,
           sum(violations) AS violations
    FROM current_pack_results CROSS JOIN LATERAL unnest(groups) AS group_name
         CROSS JOIN LATERAL unnest(ARRAY['', pack]) AS scope
    GROUP BY org_id, entity_type, entity_key, group_name, scope),
per_policy AS (
    SELECT org_id, entity_type, group_name, pack, pack_version, policy,
           count(*) FILTER (WHERE level = 'advisory') AS advisory,
           count(*) FILTER (WHERE level = 'mandatory') AS mandatory
    FROM current_violations CROSS JOIN LATERAL unnest(array_append(groups, '')) AS group_name
    GROUP BY org_id, entity_type, entity_key, group_name, pack, pack_version, policy)
SELECT 'pack' AS kind, org_id, entity_type, group_name, pack, pack_version, '' AS policy,
       max(version_tag) AS version_tag, count(*) AS entities,
       count(*) FILTER (WHERE errored) AS errored,
       count(*) FILTER (WHERE NOT errored AND violations = 0) AS passing,
       0::bigint AS advisory, 0::bigint AS mandatory
FROM per_pack GROUP BY org_id, entity_type, group_name, pack, pack_version
UNION ALL
SELECT 'policy', org_id, entity_type, group_name, pack, pack_version, policy, NULL, count(*),
       0, 0, sum(advisory)::bigint, sum(mandatory)::bigint
FROM per_policy GROUP BY org_id, entity_type, group_name, pack, pack_version, policy
UNION ALL
SELECT 'group', org_id, entity_type, group_name, scope, 0, '', NULL, count(*),
       count(*) FILTER (WHERE errored), count(*) FILTER (WHERE NOT errored AND violations = 0),
       0, 0
FROM per_group GROUP BY org_id, entity_type, group_name, scope
UNION ALL
SELECT 'group', org_id, entity_type, group_name, scope, 0, '', NULL, 0, 0, 0,
       count(*) FILTER (WHERE level = 'advisory'), count(*) FILTER (WHERE level = 'mandatory')
FROM current_violations CROSS JOIN LATERAL unnest(groups) AS group_name
     CROSS JOIN LATERAL unnest(ARRAY['', pack]) AS scope
GROUP BY org_id, entity_type, group_name, scope;

INSERT INTO compliance_pack_counts (org_id, group_name, pack, pack_version, entity_type,
                                    version_tag, evaluated, errored, passing)
SELECT org_id, group_name, pack, pack_version, entity_type, version_tag, entities, errored,
       passing
FROM compliance_backfill WHERE kind = 'pack';

INSERT INTO compliance_policy_counts (org_id, group_name, pack, pack_version, policy,
                                      entity_type, failing, advisory, mandatory)
SELECT org_id, group_name, pack, pack_version, policy, entity_type, entities, advisory,
       mandatory
FROM compliance_backfill WHERE kind = 'policy';

INSERT INTO compliance_group_counts (org_id, pack, group_name, entity_type, evaluated,
                                     errored, passing, advisory, mandatory)
SELECT org_id, pack, group_name, entity_type, sum(entities), sum(errored), sum(passing),
       sum(advisory), sum(mandatory)
FROM compliance_backfill WHERE kind = 'group'
GROUP BY org_id, pack, group_name, entity_type;
