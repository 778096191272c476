-- The operator's console: events found by conversation, jobs listed by kind, and every
-- admin action audited. Events stored before this migration have no conversation_id (their
-- payload still names it); new ones get it at intake.

ALTER TABLE events ADD COLUMN conversation_id BIGINT;
CREATE INDEX events_conversation ON events (conversation_id, id);
CREATE INDEX events_type_id ON events (event_type, id);
CREATE INDEX events_org_id ON events (org_id, id);

CREATE INDEX jobs_state_id ON jobs (state, id);
CREATE INDEX jobs_name_state ON jobs (name, state, id);

CREATE TABLE admin_audit (
    id {{id}},
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX admin_audit_at ON admin_audit (at);

CREATE TABLE sync_runs (
    id {{id}},
    org_id BIGINT NOT NULL,
    mode TEXT NOT NULL,
    destination TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    rows_written BIGINT NOT NULL,
    calls BIGINT NOT NULL,
    rate_limited BIGINT NOT NULL,
    error TEXT
);
CREATE INDEX sync_runs_org ON sync_runs (org_id, finished_at);
