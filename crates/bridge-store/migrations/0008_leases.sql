-- driftbridge schema, version 8: named leases (issue 13).

-- A lease on a piece of periodic work shared by every process on the database (the retention
-- purge): taken with a conditional upsert, renewed by its holder, free once it expires.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    lease_until BIGINT NOT NULL
);
CREATE INDEX jobs_finished ON jobs (state, finished_at);
CREATE INDEX events_received ON events (received_at);
CREATE INDEX messages_created ON messages (created_at);
