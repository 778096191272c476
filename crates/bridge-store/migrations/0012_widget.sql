-- Widget events: what a visitor's browser reported through /widget.js (docs/WIDGET.md), one
-- row per event, de-duplicated by the site and the browser's own event id. The utm_*,
-- landing_page and first_referrer columns are the session's first touch as the browser kept
-- it; page_url, page_path and referrer the page the event happened on. `data` is the event's
-- payload as JSON, without emails or phone numbers unless the site opted in.
CREATE TABLE widget_events (
    org_id BIGINT NOT NULL,
    site TEXT NOT NULL,
    event_id TEXT NOT NULL,
    visitor_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    conversation_id BIGINT,
    page_url TEXT,
    page_path TEXT,
    referrer TEXT,
    utm_source TEXT,
    utm_medium TEXT,
    utm_campaign TEXT,
    utm_term TEXT,
    utm_content TEXT,
    landing_page TEXT,
    first_referrer TEXT,
    data TEXT NOT NULL,
    PRIMARY KEY (org_id, site, event_id)
);
CREATE INDEX widget_events_conversation ON widget_events (org_id, conversation_id);
CREATE INDEX widget_events_visitor ON widget_events (org_id, site, visitor_id, occurred_at);
CREATE INDEX widget_events_received ON widget_events (received_at);

-- First-touch attribution per conversation, derived from the widget events of the visitor
-- who had it; contact_id once the conversation is synced.
CREATE TABLE conversation_attribution (
    org_id BIGINT NOT NULL,
    conversation_id BIGINT NOT NULL,
    site TEXT NOT NULL,
    visitor_id TEXT NOT NULL,
    contact_id BIGINT,
    utm_source TEXT,
    utm_medium TEXT,
    utm_campaign TEXT,
    utm_term TEXT,
    utm_content TEXT,
    landing_page TEXT,
    referrer TEXT,
    first_seen_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, conversation_id)
);

-- A visitor's answer to the widget's GDPR consent prompt (gdprClicked), the latest one.
CREATE TABLE widget_consents (
    org_id BIGINT NOT NULL,
    site TEXT NOT NULL,
    visitor_id TEXT NOT NULL,
    accepted BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, site, visitor_id)
);

-- The facts carry the conversation's first touch (computed like the outcomes).
ALTER TABLE conversation_facts ADD COLUMN utm_source TEXT;
ALTER TABLE conversation_facts ADD COLUMN utm_medium TEXT;
ALTER TABLE conversation_facts ADD COLUMN utm_campaign TEXT;
ALTER TABLE conversation_facts ADD COLUMN landing_page TEXT;
ALTER TABLE conversation_facts ADD COLUMN referrer TEXT;
