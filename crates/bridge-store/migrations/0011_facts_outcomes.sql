-- Conversation facts carry their outcomes: whether a playbook goal was met in the
-- conversation and how many meetings it booked. A SQL store computes both from
-- playbook_goals_met and meetings after every write that could change them; rows written
-- before this migration get them here.

ALTER TABLE conversation_facts ADD COLUMN goal_met BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversation_facts ADD COLUMN meetings_booked BIGINT NOT NULL DEFAULT 0;
CREATE INDEX meetings_conversation ON meetings (org_id, conversation_id);

UPDATE conversation_facts SET
    goal_met = CASE WHEN EXISTS (SELECT 1 FROM playbook_goals_met g
        WHERE g.org_id = conversation_facts.org_id
        AND g.conversation_id = conversation_facts.conversation_id) THEN 1 ELSE 0 END,
    meetings_booked = (SELECT COUNT(*) FROM meetings m
        WHERE m.org_id = conversation_facts.org_id
        AND m.conversation_id = conversation_facts.conversation_id);
