-- driftbridge schema, version 2: what the data connector (issue 4) adds.

-- Conversational landing pages (`GET /playbooks/clp`), one per playbook.
CREATE TABLE landing_pages (
    org_id BIGINT NOT NULL,
    playbook_id BIGINT NOT NULL,
    name TEXT,
    url TEXT,
    PRIMARY KEY (org_id, playbook_id)
);

-- Where each export/sync stream of an org stopped; written in the same transaction as the
-- rows it covers, so a killed run resumes exactly after its last committed page.
CREATE TABLE export_checkpoints (
    org_id BIGINT NOT NULL,
    stream TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, stream)
);

-- One running sync per org across every process sharing the database: a lease, taken with a
-- conditional upsert and renewed while the sync runs.
CREATE TABLE sync_locks (
    org_id BIGINT PRIMARY KEY,
    holder TEXT NOT NULL,
    lease_until BIGINT NOT NULL
);
