-- Organizations, tokens, stacks, accounts, policy packs, policy groups and the outbox.

CREATE TABLE orgs (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    revision    bigint NOT NULL DEFAULT 0,   -- bumped by every policy group change
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tokens (
    id           uuid PRIMARY KEY,
    org_id       bigint NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    role         text NOT NULL CHECK (role IN ('admin', 'member', 'ingest')),
    description  text NOT NULL DEFAULT '',
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX tokens_org ON tokens (org_id);

CREATE TABLE stacks (
    id              bigserial PRIMARY KEY,
    org_id          bigint NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    project         text NOT NULL,
    name            text NOT NULL,
    resources       jsonb NOT NULL DEFAULT '[]',
    resource_count  integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, project, name)
);

CREATE TABLE accounts (
    id                      bigserial PRIMARY KEY,
    org_id                  bigint NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    account_id              text NOT NULL,           -- the InsightsAccount "id"
    name                    text NOT NULL,
    provider                text NOT NULL,
    provider_version        text,
    provider_env_ref        text,
    scheduled_scan_enabled  boolean NOT NULL DEFAULT false,
    agent_pool_id           text,
    provider_config         jsonb,
    owned_by                jsonb NOT NULL DEFAULT '{}',
    scan_status             jsonb,
    resources               jsonb NOT NULL DEFAULT '[]',
    resource_count          integer NOT NULL DEFAULT 0,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);

CREATE TABLE policy_packs (
    id            bigserial PRIMARY KEY,
    org_id        bigint NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name          text NOT NULL,
    display_name  text NOT NULL DEFAULT '',
    next_version  integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);

CREATE TABLE policy_pack_versions (
    id           bigserial PRIMARY KEY,
    pack_id      bigint NOT NULL REFERENCES policy_packs(id) ON DELETE CASCADE,
    version      integer NOT NULL,
    version_tag  text NOT NULL,
    policies     jsonb NOT NULL,   -- [{name, description, enforcementLevel, configSchema, rego}]
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (pack_id, version),
    UNIQUE (pack_id, version_tag)
);

CREATE TABLE policy_groups (
    id              bigserial PRIMARY KEY,
    org_id          bigint NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name            text NOT NULL,
    entity_type     text NOT NULL CHECK (entity_type IN ('stacks', 'accounts')),
    mode            text NOT NULL CHECK (mode IN ('audit', 'preventative')),
    agent_pool_id   text,
    is_org_default  boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);
-- one default group per entity type and org
CREATE UNIQUE INDEX policy_groups_default ON policy_groups (org_id, entity_type)
    WHERE is_org_default;

CREATE TABLE policy_group_stacks (
    group_id  bigint NOT NULL REFERENCES policy_groups(id) ON DELETE CASCADE,
    stack_id  bigint NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, stack_id)
);
CREATE INDEX policy_group_stacks_stack ON policy_group_stacks (stack_id);

CREATE TABLE policy_group_accounts (
    group_id    bigint NOT NULL REFERENCES policy_groups(id) ON DELETE CASCADE,
    account_id  bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, account_id)
);
CREATE INDEX policy_group_accounts_account ON policy_group_accounts (account_id);

CREATE TABLE policy_group_packs (
    group_id          bigint NOT NULL REFERENCES policy_groups(id) ON DELETE CASCADE,
    pack_id           bigint NOT NULL REFERENCES policy_packs(id) ON DELETE CASCADE,
    pack_version_id   bigint NOT NULL REFERENCES policy_pack_versions(id) ON DELETE RESTRICT,
    config            jsonb NOT NULL DEFAULT '{}',
    environments      jsonb NOT NULL DEFAULT '[]',
    added_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, pack_id)
);
CREATE INDEX policy_group_packs_version ON policy_group_packs (pack_version_id);

-- Transactional outbox: written in the same transaction as the change it announces,
-- published to Kafka by the relay, marked only after Kafka acknowledged.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    topic         text NOT NULL,
    key           text NOT NULL,
    value         jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;
