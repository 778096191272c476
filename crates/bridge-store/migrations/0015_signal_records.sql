-- driftbridge schema, version 15: what lead signals wrote in each sink, by Drift contact.
-- A signal (`contact_identified`, `playbook_goal_met`, `phone_captured`) can put a person in a
-- CRM before any conversation of theirs is delivered; an erasure reads these ids to delete
-- that person too, and then deletes the rows.
CREATE TABLE signal_records (
    org_id BIGINT NOT NULL,
    contact_id BIGINT NOT NULL,
    sink TEXT NOT NULL,
    external_ids TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, contact_id, sink)
);
