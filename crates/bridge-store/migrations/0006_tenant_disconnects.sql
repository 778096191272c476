-- driftbridge schema, version 6: why a tenant is inactive, and when it came back (issue 18).

-- Who or what disconnected the org: Drift's `app_disconnected` webhook, or an operator's
-- `tenants revoke`. `tenants list` prints it; `tenants restore` clears it and sets
-- `restored_at`.
ALTER TABLE tenants ADD COLUMN revoked_reason TEXT;
ALTER TABLE tenants ADD COLUMN restored_at BIGINT;
