-- driftbridge schema, version 1. One file for both backends: `{{id}}` becomes
-- `INTEGER PRIMARY KEY AUTOINCREMENT` on SQLite and `BIGSERIAL PRIMARY KEY` on PostgreSQL.
-- Times are epoch milliseconds (BIGINT); JSON is TEXT. docs/SCHEMA.md explains every table.

CREATE TABLE events (
    id {{id}},
    dedup_key TEXT NOT NULL UNIQUE,
    org_id BIGINT,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX events_org_type ON events (org_id, event_type);

CREATE TABLE jobs (
    id {{id}},
    name TEXT NOT NULL,
    org_id BIGINT,
    args TEXT NOT NULL,
    event_id BIGINT,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    run_at BIGINT NOT NULL,
    lease_until BIGINT,
    worker TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX jobs_ready ON jobs (state, run_at);
CREATE INDEX jobs_event ON jobs (event_id);

CREATE TABLE conversations (
    org_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    status TEXT NOT NULL,
    contact_id BIGINT,
    inbox_id BIGINT,
    related_playbook_id BIGINT,
    created_at BIGINT,
    updated_at BIGINT,
    synced_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, id)
);

CREATE TABLE conversation_participants (
    org_id BIGINT NOT NULL,
    conversation_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    PRIMARY KEY (org_id, conversation_id, user_id)
);

CREATE TABLE conversation_tags (
    org_id BIGINT NOT NULL,
    conversation_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    color TEXT,
    PRIMARY KEY (org_id, conversation_id, name)
);

CREATE TABLE messages (
    org_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    conversation_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    author_type TEXT NOT NULL,
    author_id BIGINT NOT NULL,
    author_bot BIGINT NOT NULL,
    type TEXT NOT NULL,
    body TEXT,
    context TEXT,
    attributes TEXT,
    edited_message_id BIGINT,
    edit_type TEXT,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX messages_conversation ON messages (org_id, conversation_id, created_at);

CREATE TABLE message_buttons (
    org_id BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    position BIGINT NOT NULL,
    label TEXT NOT NULL,
    value TEXT NOT NULL,
    type TEXT NOT NULL,
    style TEXT,
    PRIMARY KEY (org_id, message_id, position)
);

CREATE TABLE transcripts (
    org_id BIGINT NOT NULL,
    conversation_id BIGINT NOT NULL,
    body TEXT NOT NULL,
    fetched_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, conversation_id)
);

CREATE TABLE contacts (
    org_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    created_at BIGINT,
    email TEXT,
    name TEXT,
    first_name TEXT,
    last_name TEXT,
    phone TEXT,
    company TEXT,
    title TEXT,
    external_id TEXT,
    attributes TEXT NOT NULL,
    synced_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX contacts_email ON contacts (org_id, email);

CREATE TABLE users (
    org_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    name TEXT,
    alias TEXT,
    email TEXT,
    phone TEXT,
    locale TEXT,
    availability TEXT,
    role TEXT,
    time_zone TEXT,
    avatar_url TEXT,
    verified BIGINT NOT NULL,
    bot BIGINT NOT NULL,
    created_at BIGINT,
    updated_at BIGINT,
    PRIMARY KEY (org_id, id)
);

CREATE TABLE accounts (
    org_id BIGINT NOT NULL,
    account_id TEXT NOT NULL,
    owner_id BIGINT,
    name TEXT,
    domain TEXT,
    deleted BIGINT NOT NULL,
    targeted BIGINT NOT NULL,
    created_at BIGINT,
    updated_at BIGINT,
    PRIMARY KEY (org_id, account_id)
);

CREATE TABLE account_custom_properties (
    org_id BIGINT NOT NULL,
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    label TEXT NOT NULL,
    type TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (org_id, account_id, name)
);

CREATE TABLE playbooks (
    org_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    name TEXT NOT NULL,
    interaction_id BIGINT,
    report_type TEXT,
    meta TEXT,
    created_at BIGINT,
    updated_at BIGINT,
    created_author_id BIGINT,
    updated_author_id BIGINT,
    PRIMARY KEY (org_id, id)
);

CREATE TABLE playbook_goals (
    org_id BIGINT NOT NULL,
    playbook_id BIGINT NOT NULL,
    goal_id TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (org_id, playbook_id, goal_id)
);

CREATE TABLE playbook_goals_met (
    org_id BIGINT NOT NULL,
    conversation_id BIGINT NOT NULL,
    playbook_id BIGINT NOT NULL,
    goal_id TEXT NOT NULL,
    goal_name TEXT,
    contact_id BIGINT,
    event_id BIGINT NOT NULL,
    PRIMARY KEY (org_id, conversation_id, playbook_id, goal_id)
);

CREATE TABLE meetings (
    org_id BIGINT NOT NULL,
    meeting_key TEXT NOT NULL,
    event_id TEXT,
    agent_id BIGINT,
    scheduler_id BIGINT,
    conversation_id BIGINT,
    status TEXT,
    meeting_source TEXT,
    meeting_type TEXT,
    slug TEXT,
    slot_start BIGINT,
    slot_end BIGINT,
    scheduled_at BIGINT,
    updated_at BIGINT,
    end_user_time_zone TEXT,
    meeting_notes TEXT,
    booked_by BIGINT,
    PRIMARY KEY (org_id, meeting_key)
);
