-- driftbridge schema, version 3: tenants and the token vault (issue 5).

-- One row per Drift org that installed the app (or was configured). Nothing secret here.
CREATE TABLE tenants (
    org_id BIGINT PRIMARY KEY,
    status TEXT NOT NULL,
    scopes TEXT,
    installed_by TEXT,
    installed_at BIGINT NOT NULL,
    token_expires_at BIGINT,
    revoked_at BIGINT,
    last_activity_at BIGINT
);

-- Per-tenant data keys, each sealed (AES-256-GCM) under a master key that never touches the
-- database; `master_key_id` names which one.
CREATE TABLE tenant_keys (
    org_id BIGINT NOT NULL,
    version BIGINT NOT NULL,
    master_key_id TEXT NOT NULL,
    wrapped TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, version)
);

-- Secrets sealed under their tenant's data key; the associated data binds tenant, kind and
-- key version, so a ciphertext moved to another row does not open.
CREATE TABLE tenant_secrets (
    org_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    key_version BIGINT NOT NULL,
    sealed TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, kind)
);

-- Every use of a tenant's decrypted token: who used it for what, when, and for how many calls.
CREATE TABLE token_audit (
    id {{id}},
    org_id BIGINT NOT NULL,
    purpose TEXT NOT NULL,
    at BIGINT NOT NULL,
    calls BIGINT NOT NULL
);
CREATE INDEX token_audit_org ON token_audit (org_id, at);
