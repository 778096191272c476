-- driftbridge schema, version 4: CRM/MAP deliveries (issue 6).

-- One row per (org, conversation, sink): what the sink last wrote and the ids the CRM gave
-- it, so a retried or replayed delivery updates instead of creating. `holder` is the job
-- delivering it now (one at a time per row); `pending_since` is set before the first CRM
-- write of an attempt and cleared when its result is recorded, so an attempt that finds it
-- set knows an earlier one may have written records it never recorded.
CREATE TABLE deliveries (
    org_id BIGINT NOT NULL,
    conversation_id BIGINT NOT NULL,
    sink TEXT NOT NULL,
    state TEXT NOT NULL,
    external_ids TEXT NOT NULL,
    content_hash TEXT,
    holder BIGINT,
    held_until BIGINT,
    pending_since BIGINT,
    deliveries BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, conversation_id, sink)
);
CREATE INDEX deliveries_sink_state ON deliveries (sink, state);
