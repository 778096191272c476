-- driftbridge schema, version 7: erasures and tombstones (issue 13). No column here holds an
-- email, a name or a message: subjects are keyed digests (HMAC-SHA256 under `privacy_key`).

-- The digest key: one row, 32 random bytes made at the first erasure.
CREATE TABLE privacy_key (
    id BIGINT PRIMARY KEY,
    key_hex TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- One row per erasure of one person in one org: when, on whose request, and how many rows of
-- each kind it removed or redacted (`summary`, JSON). `subject` is the digest of the email.
CREATE TABLE erasures (
    id {{id}},
    org_id BIGINT NOT NULL,
    subject TEXT NOT NULL,
    source TEXT NOT NULL,
    event_id BIGINT,
    requested_at BIGINT NOT NULL,
    erased_at BIGINT NOT NULL,
    summary TEXT NOT NULL
);
CREATE INDEX erasures_subject ON erasures (org_id, subject);

-- Each configured sink's part of an erasure: `pending` until its erase job deleted what the
-- sink holds, then `done` (or `failed` with the CRM's words, or `nothing` when the sink
-- never received the person).
CREATE TABLE erasure_sinks (
    erasure_id BIGINT NOT NULL,
    sink TEXT NOT NULL,
    state TEXT NOT NULL,
    records BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (erasure_id, sink)
);

-- What must never be written again: digests of an erased email, and of the contact and
-- conversation ids that were theirs. Every warehouse write drops rows that match.
CREATE TABLE tombstones (
    org_id BIGINT NOT NULL,
    digest TEXT NOT NULL,
    erasure_id BIGINT NOT NULL,
    PRIMARY KEY (org_id, digest)
);
