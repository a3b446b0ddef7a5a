-- Evaluations (one per stack event or account scan chunk), their violations, and
-- events that could not be decoded or validated.

CREATE TABLE evaluations (
    id              uuid PRIMARY KEY,
    org_id          bigint NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    event_id        text NOT NULL,
    entity_type     text NOT NULL CHECK (entity_type IN ('stack', 'account')),
    entity_key      text NOT NULL,          -- "project/stack" or the account name
    kind            text NOT NULL CHECK (kind IN ('preview', 'update', 'refresh', 'destroy', 'scan')),
    status          text NOT NULL CHECK (status IN ('pending', 'finished')),
    outcome         text CHECK (outcome IN ('pass', 'advisory', 'mandatory', 'error')),
    blocking        boolean,
    resource_count  integer NOT NULL DEFAULT 0,
    scan_id         text,
    chunk           integer,
    chunks          integer,
    audit_id        uuid,
    packs           jsonb NOT NULL DEFAULT '[]',   -- per-pack results with provenance
    opa_version     text,
    occurred_at     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    UNIQUE (org_id, event_id)
);
CREATE INDEX evaluations_org_recent ON evaluations (org_id, received_at DESC, id);
CREATE INDEX evaluations_entity_latest ON evaluations (org_id, entity_type, entity_key, finished_at DESC)
    WHERE status = 'finished';

CREATE TABLE violations (
    id             bigserial PRIMARY KEY,
    evaluation_id  uuid NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE,
    org_id         bigint NOT NULL,
    entity_type    text NOT NULL,
    entity_key     text NOT NULL,
    groups         text[] NOT NULL,      -- every policy group that applies the pack
    pack           text NOT NULL,
    pack_version   integer NOT NULL,
    version_tag    text NOT NULL,
    policy         text NOT NULL,
    level          text NOT NULL CHECK (level IN ('advisory', 'mandatory')),
    urn            text,
    message        text NOT NULL,
    details        jsonb,
    observed_at    timestamptz NOT NULL
);
CREATE INDEX violations_evaluation ON violations (evaluation_id);

CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    topic       text NOT NULL,
    partition   integer NOT NULL,
    "offset"    bigint NOT NULL,
    key         bytea,
    value       bytea,
    error       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (topic, partition, "offset")
);
