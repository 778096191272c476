-- Analyst-grade columns (docs/SCHEMA.md, "Types"): every warehouse table ends with
-- _synced_at (when driftbridge last wrote a change to the row; NULL for rows written
-- before this migration); conversations and contacts had it as synced_at, transcripts as
-- fetched_at. New tables: contact_tags (the legacy `tags` attribute) and attachments
-- (message attachments, metadata only). PostgreSQL then types its columns natively:
-- 0014_typed_columns.postgres.sql.

ALTER TABLE accounts ADD COLUMN _synced_at BIGINT;
ALTER TABLE account_custom_properties ADD COLUMN _synced_at BIGINT;
ALTER TABLE users ADD COLUMN _synced_at BIGINT;
ALTER TABLE conversations RENAME COLUMN synced_at TO _synced_at;
ALTER TABLE conversation_participants ADD COLUMN _synced_at BIGINT;
ALTER TABLE conversation_tags ADD COLUMN _synced_at BIGINT;
ALTER TABLE messages ADD COLUMN _synced_at BIGINT;
ALTER TABLE message_buttons ADD COLUMN _synced_at BIGINT;
ALTER TABLE transcripts RENAME COLUMN fetched_at TO _synced_at;
ALTER TABLE contacts RENAME COLUMN synced_at TO _synced_at;
ALTER TABLE playbooks ADD COLUMN _synced_at BIGINT;
ALTER TABLE playbook_goals ADD COLUMN _synced_at BIGINT;
ALTER TABLE landing_pages ADD COLUMN _synced_at BIGINT;
ALTER TABLE meetings ADD COLUMN _synced_at BIGINT;
ALTER TABLE conversation_facts ADD COLUMN _synced_at BIGINT;
ALTER TABLE widget_events ADD COLUMN _synced_at BIGINT;
ALTER TABLE conversation_attribution ADD COLUMN _synced_at BIGINT;
ALTER TABLE widget_consents ADD COLUMN _synced_at BIGINT;

CREATE TABLE contact_tags (
    org_id BIGINT NOT NULL,
    contact_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    color TEXT,
    _synced_at BIGINT,
    PRIMARY KEY (org_id, contact_id, name)
);

CREATE TABLE attachments (
    org_id BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    position BIGINT NOT NULL,
    conversation_id BIGINT NOT NULL,
    document_id BIGINT,
    file_name TEXT NOT NULL,
    mime_type TEXT,
    size BIGINT,
    url TEXT,
    _synced_at BIGINT,
    PRIMARY KEY (org_id, message_id, position)
);
CREATE INDEX attachments_conversation ON attachments (org_id, conversation_id);
