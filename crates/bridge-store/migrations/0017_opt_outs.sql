-- driftbridge schema, version 17: who opted out of emails, by digest. Drift's
-- `user_unsubscribed` flags the records a CRM already holds; a record a later delivery or lead
-- signal creates (the person's first closed chat, after they unsubscribed) must carry the flag
-- too. A row holds the HMAC digest of the normalized email (the key in `privacy_key`), never
-- the email; an erasure deletes it.
CREATE TABLE opt_outs (
    org_id BIGINT NOT NULL,
    digest TEXT NOT NULL,
    opted_out_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, digest)
);
