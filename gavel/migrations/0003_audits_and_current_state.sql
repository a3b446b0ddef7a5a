-- Audit scans, and the current state of each entity (its latest finished evaluation
-- and that evaluation's violations), kept beside the history.

ALTER TABLE evaluations DROP CONSTRAINT evaluations_kind_check;
ALTER TABLE evaluations ADD CONSTRAINT evaluations_kind_check
    CHECK (kind IN ('preview', 'update', 'refresh', 'destroy', 'scan', 'audit'));
CREATE INDEX evaluations_audit ON evaluations (audit_id) WHERE audit_id IS NOT NULL;

CREATE TABLE audits (
    id            uuid PRIMARY KEY,
    org_id        bigint NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    -- what is audited: 'org' (every audit-mode group), 'group:<id>' or 'schedule'
    -- (accounts with scheduledScanEnabled in audit-mode account groups)
    target        text NOT NULL,
    policy_group  text,                   -- the named group, when target is one group
    trigger       text NOT NULL CHECK (trigger IN ('manual', 'group-change', 'schedule')),
    status        text NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    groups        text[] NOT NULL DEFAULT '{}',   -- the groups audited, fixed when it starts
    total         integer NOT NULL DEFAULT 0,     -- entities to evaluate
    evaluated     integer NOT NULL DEFAULT 0,
    failed        integer NOT NULL DEFAULT 0,
    advisory      integer NOT NULL DEFAULT 0,     -- violations found, by level
    mandatory     integer NOT NULL DEFAULT 0,
    chunks        integer,                        -- set once every chunk is enqueued
    chunks_done   integer NOT NULL DEFAULT 0,
    error         text,
    not_before    timestamptz NOT NULL DEFAULT now(),
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz
);
CREATE INDEX audits_org_recent ON audits (org_id, created_at DESC, id);
CREATE INDEX audits_queued ON audits (not_before) WHERE status = 'queued';
-- a trigger while an audit of the same target is still queued joins that audit
CREATE UNIQUE INDEX audits_one_queued_per_target ON audits (org_id, target)
    WHERE status = 'queued';

-- chunks whose results are counted; a redelivered chunk is counted once
CREATE TABLE audit_chunks (
    audit_id  uuid NOT NULL REFERENCES audits(id) ON DELETE CASCADE,
    chunk     integer NOT NULL,
    PRIMARY KEY (audit_id, chunk)
);

CREATE TABLE latest_evaluations (
    org_id         bigint NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    entity_type    text NOT NULL,
    entity_key     text NOT NULL,
    evaluation_id  uuid NOT NULL,
    occurred_at    timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL,
    PRIMARY KEY (org_id, entity_type, entity_key)
);
CREATE UNIQUE INDEX latest_evaluations_evaluation ON latest_evaluations (evaluation_id);

-- the violations of each entity's latest evaluation (a copy of those rows)
CREATE TABLE current_violations (
    violation_id   bigint PRIMARY KEY,
    evaluation_id  uuid NOT NULL,
    org_id         bigint NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    entity_type    text NOT NULL,
    entity_key     text NOT NULL,
    groups         text[] NOT NULL,
    pack           text NOT NULL,
    pack_version   integer NOT NULL,
    version_tag    text NOT NULL,
    policy         text NOT NULL,
    level          text NOT NULL,
    urn            text,
    message        text NOT NULL,
    details        jsonb,
    observed_at    timestamptz NOT NULL
);
CREATE INDEX current_violations_entity ON current_violations (org_id, entity_type, entity_key);
