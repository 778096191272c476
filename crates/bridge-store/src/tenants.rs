//! The `tenants` and `token_audit` tables: who installed the app, its status, and every
//! recorded use of a tenant's token. Nothing here is secret; the tokens are in [`crate::vault`].

use drift_types::OrgId;

use crate::{Conn, Op, Result, Store};

/// A tenant row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Tenant {
    /// Drift org id.
    pub org_id: i64,
    /// `active` or `revoked`.
    pub status: String,
    /// Granted scopes, space-separated.
    pub scopes: Option<String>,
    /// Who installed it.
    pub installed_by: Option<String>,
    /// When (epoch ms).
    pub installed_at: i64,
    /// Access-token expiry (epoch ms).
    pub token_expires_at: Option<i64>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
    /// Who or what revoked it (the `app_disconnected` webhook, an operator's command).
    pub revoked_reason: Option<String>,
    /// When an operator last restored it.
    pub restored_at: Option<i64>,
    /// Last recorded token use.
    pub last_activity_at: Option<i64>,
}

/// One audit row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    /// What the token was used for.
    pub purpose: String,
    /// When the uses were recorded (epoch ms).
    pub at: i64,
    /// Drift calls made with it.
    pub calls: i64,
}

/// Records an install (or a reinstall): the tenant becomes active.
pub async fn upsert_active(
    conn: &mut Conn,
    org: OrgId,
    scopes: Option<&str>,
    installed_by: Option<&str>,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tenants (org_id, status, scopes, installed_by, installed_at) \
         VALUES ($1, 'active', $2, $3, $4) ON CONFLICT (org_id) DO UPDATE SET \
         status = 'active', scopes = excluded.scopes, installed_by = excluded.installed_by, \
         installed_at = excluded.installed_at, revoked_at = NULL, revoked_reason = NULL",
    )
    .bind(org.0)
    .bind(scopes)
    .bind(installed_by)
    .bind(now_ms)
    .execute(conn)
    .await
    .op("recording a tenant")?;
    Ok(())
}

/// Records when the tenant's access token expires.
pub async fn set_token_expiry(conn: &mut Conn, org: OrgId, expires_at: Option<i64>) -> Result<()> {
    sqlx::query("UPDATE tenants SET token_expires_at = $2 WHERE org_id = $1")
        .bind(org.0)
        .bind(expires_at)
        .execute(conn)
        .await
        .op("recording token expiry")?;
    Ok(())
}

/// Marks the org revoked and says why (creating the row for a private-app org that never
/// installed).
pub async fn mark_revoked(conn: &mut Conn, org: OrgId, reason: &str, now_ms: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO tenants (org_id, status, installed_at, revoked_at, revoked_reason) \
         VALUES ($1, 'revoked', $2, $2, $3) \
         ON CONFLICT (org_id) DO UPDATE SET status = 'revoked', revoked_at = excluded.revoked_at, \
         revoked_reason = excluded.revoked_reason, token_expires_at = NULL",
    )
    .bind(org.0)
    .bind(now_ms)
    .bind(reason)
    .execute(conn)
    .await
    .op("marking the tenant revoked")?;
    Ok(())
}

/// Makes a revoked org active again; false when it was not revoked.
pub async fn mark_restored(conn: &mut Conn, org: OrgId, now_ms: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE tenants SET status = 'active', revoked_at = NULL, revoked_reason = NULL, \
         restored_at = $2 WHERE org_id = $1 AND status = 'revoked'",
    )
    .bind(org.0)
    .bind(now_ms)
    .execute(conn)
    .await
    .op("restoring the tenant")?;
    Ok(done.rows_affected() == 1)
}

/// One tenant (`Some(org)`) or all of them.
pub async fn select(store: &Store, org: Option<OrgId>) -> Result<Vec<Tenant>> {
    type Row = (
        i64,
        String,
        Option<String>,
        Option<String>,
        i64,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<i64>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT org_id, status, scopes, installed_by, installed_at, token_expires_at, \
         revoked_at, last_activity_at, revoked_reason, restored_at FROM tenants WHERE $1 IS NULL OR org_id = $1 ORDER BY org_id",
    )
    .bind(org.map(|o| o.0))
    .fetch_all(store.pool())
    .await
    .op("reading tenants")?;
    Ok(rows
        .into_iter()
        .map(|r| Tenant {
            org_id: r.0,
            status: r.1,
            scopes: r.2,
            installed_by: r.3,
            installed_at: r.4,
            token_expires_at: r.5,
            revoked_at: r.6,
            last_activity_at: r.7,
            revoked_reason: r.8,
            restored_at: r.9,
        })
        .collect())
}

/// Appends `calls` uses for `purpose` and moves the tenant's last activity.
pub async fn record_use(
    conn: &mut Conn,
    org: OrgId,
    purpose: &str,
    calls: i64,
    now_ms: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO token_audit (org_id, purpose, at, calls) VALUES ($1, $2, $3, $4)")
        .bind(org.0)
        .bind(purpose)
        .bind(now_ms)
        .bind(calls)
        .execute(&mut *conn)
        .await
        .op("writing the token audit")?;
    sqlx::query("UPDATE tenants SET last_activity_at = $2 WHERE org_id = $1")
        .bind(org.0)
        .bind(now_ms)
        .execute(conn)
        .await
        .op("recording tenant activity")?;
    Ok(())
}

/// The org's audit trail, newest first.
pub async fn audit(store: &Store, org: OrgId) -> Result<Vec<AuditEntry>> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT purpose, at, calls FROM token_audit WHERE org_id = $1 ORDER BY at DESC, id DESC",
    )
    .bind(org.0)
    .fetch_all(store.pool())
    .await
    .op("reading the token audit")?;
    Ok(rows
        .into_iter()
        .map(|(purpose, at, calls)| AuditEntry { purpose, at, calls })
        .collect())
}
