//! Export bookkeeping: where each stream of an org stopped, and the per-org sync lease.
//!
//! A checkpoint is saved in the same transaction as the rows it covers, so after a crash the
//! stored position and the stored rows always agree. The sync lease makes sure that two
//! processes sharing one database never sync the same org at once.

use drift_types::OrgId;

use crate::{Conn, Op, Result, Store};

/// The saved state of `stream` for `org`, if any.
pub async fn load(conn: &mut Conn, org: OrgId, stream: &str) -> Result<Option<serde_json::Value>> {
    let s: Option<String> = sqlx::query_scalar(
        "SELECT state FROM export_checkpoints WHERE org_id = $1 AND stream = $2",
    )
    .bind(org.0)
    .bind(stream)
    .fetch_optional(conn)
    .await
    .op("reading a checkpoint")?;
    s.map(|s| serde_json::from_str(&s))
        .transpose()
        .map_err(|source| crate::Error::Corrupt {
            what: "export checkpoint",
            source,
        })
}

/// Saves the state of `stream` for `org`.
pub async fn save(
    conn: &mut Conn,
    org: OrgId,
    stream: &str,
    state: &serde_json::Value,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO export_checkpoints (org_id, stream, state, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id, stream) DO UPDATE SET state = excluded.state, \
         updated_at = excluded.updated_at",
    )
    .bind(org.0)
    .bind(stream)
    .bind(state.to_string())
    .bind(now_ms)
    .execute(conn)
    .await
    .op("saving a checkpoint")?;
    Ok(())
}

/// Forgets every checkpoint of `org` (the next export starts from the top).
pub async fn clear(conn: &mut Conn, org: OrgId) -> Result<u64> {
    Ok(
        sqlx::query("DELETE FROM export_checkpoints WHERE org_id = $1")
            .bind(org.0)
            .execute(conn)
            .await
            .op("clearing checkpoints")?
            .rows_affected(),
    )
}

/// Takes or renews the sync lease of `org` for `holder` until `until_ms`; false when another
/// holder's lease is still running.
pub async fn try_lock(
    store: &Store,
    org: OrgId,
    holder: &str,
    now_ms: i64,
    until_ms: i64,
) -> Result<bool> {
    let got: Option<String> = sqlx::query_scalar(
        "INSERT INTO sync_locks (org_id, holder, lease_until) VALUES ($1, $2, $3) \
         ON CONFLICT (org_id) DO UPDATE SET holder = excluded.holder, \
         lease_until = excluded.lease_until \
         WHERE sync_locks.holder = excluded.holder OR sync_locks.lease_until < $4 \
         RETURNING holder",
    )
    .bind(org.0)
    .bind(holder)
    .bind(until_ms)
    .bind(now_ms)
    .fetch_optional(store.pool())
    .await
    .op("taking the sync lease")?;
    Ok(got.is_some())
}

/// Gives the sync lease of `org` back if `holder` has it.
pub async fn unlock(store: &Store, org: OrgId, holder: &str) -> Result<()> {
    sqlx::query("DELETE FROM sync_locks WHERE org_id = $1 AND holder = $2")
        .bind(org.0)
        .bind(holder)
        .execute(store.pool())
        .await
        .op("releasing the sync lease")?;
    Ok(())
}

/// Who holds the sync lease of `org`, and until when (epoch ms), if anyone.
pub async fn lock_holder(store: &Store, org: OrgId) -> Result<Option<(String, i64)>> {
    sqlx::query_as("SELECT holder, lease_until FROM sync_locks WHERE org_id = $1")
        .bind(org.0)
        .fetch_optional(store.pool())
        .await
        .op("reading the sync lease")
}

/// Takes the sync lease of `org` from `from`, if `from` still holds it (its process is known
/// to be gone); false when someone else got there first.
pub async fn take_over(
    store: &Store,
    org: OrgId,
    from: &str,
    holder: &str,
    until_ms: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE sync_locks SET holder = $3, lease_until = $4 WHERE org_id = $1 AND holder = $2",
    )
    .bind(org.0)
    .bind(from)
    .bind(holder)
    .bind(until_ms)
    .execute(store.pool())
    .await
    .op("taking over the sync lease")?;
    Ok(done.rows_affected() == 1)
}
