-- driftbridge schema, version 9: conversation facts (issue 15).

-- One row per conversation: the numbers docs/ANALYTICS.md defines, written with the
-- conversation's rows by every sync and export.
CREATE TABLE conversation_facts (
    org_id BIGINT NOT NULL,
    conversation_id BIGINT NOT NULL,
    status TEXT NOT NULL,
    inbox_id BIGINT,
    playbook_id BIGINT,
    created_at BIGINT,
    first_contact_message_at BIGINT,
    first_bot_message_at BIGINT,
    first_agent_message_at BIGINT,
    time_to_first_agent_reply_ms BIGINT,
    handed_to_agent BIGINT NOT NULL,
    bot_only BIGINT NOT NULL,
    first_close_at BIGINT,
    time_to_close_ms BIGINT,
    contact_messages BIGINT NOT NULL,
    agent_messages BIGINT NOT NULL,
    bot_messages BIGINT NOT NULL,
    distinct_agents BIGINT NOT NULL,
    last_agent_id BIGINT,
    PRIMARY KEY (org_id, conversation_id)
);
CREATE INDEX conversation_facts_created ON conversation_facts (org_id, created_at);
