-- Delete capture: when Drift answers 404 for a stored conversation or contact on a re-fetch
-- (a webhook's job, or a sync's sweep of the conversation list), its row stays and says when
-- driftbridge found it gone; an account Drift marks `deleted` says when it was (its
-- updated_at). NULL: present.
ALTER TABLE conversations ADD COLUMN _deleted_at BIGINT;
ALTER TABLE contacts ADD COLUMN _deleted_at BIGINT;
ALTER TABLE accounts ADD COLUMN _deleted_at BIGINT;
