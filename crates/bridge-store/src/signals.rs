//! The `signal_records` table: per (org, Drift contact, sink), the CRM's ids for what lead
//! signals wrote (an erasure deletes by them), and a hold so that one job at a time writes a
//! person's signals to a sink. A meeting booked from a calendar page travels as a signal, and
//! its reschedule or cancellation must find the record its booking created.

use std::collections::BTreeMap;

use crate::{Conn, Op, Result, Store};

/// Which row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key<'a> {
    /// Drift org.
    pub org: i64,
    /// Drift contact.
    pub contact: i64,
    /// Sink name.
    pub sink: &'a str,
}

/// What earlier signals recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records {
    /// External ids by role.
    pub external_ids: BTreeMap<String, String>,
    /// When an attempt began writing and never recorded its result.
    pub pending_since: Option<i64>,
}

/// Takes the row for `holder` (a job id) until `held_until`, creating it when absent. `None`
/// when another job holds it and its hold has not expired; the holder itself may re-take it.
pub async fn claim(
    store: &Store,
    key: Key<'_>,
    holder: i64,
    now_ms: i64,
    held_until: i64,
) -> Result<Option<Records>> {
    let mut conn = store.acquire().await?;
    let n = sqlx::query(
        "INSERT INTO signal_records (org_id, contact_id, sink, external_ids, updated_at, holder, \
         held_until) VALUES ($1, $2, $3, '{}', $4, $5, $6) \
         ON CONFLICT (org_id, contact_id, sink) DO UPDATE SET holder = excluded.holder, \
         held_until = excluded.held_until WHERE signal_records.holder IS NULL \
         OR signal_records.holder = excluded.holder OR signal_records.held_until < $4",
    )
    .bind(key.org)
    .bind(key.contact)
    .bind(key.sink)
    .bind(now_ms)
    .bind(holder)
    .bind(held_until)
    .execute(&mut *conn)
    .await
    .op("holding a signal's records")?
    .rows_affected();
    if n == 0 {
        return Ok(None);
    }
    let r: Option<(String, Option<i64>)> = sqlx::query_as(
        "SELECT external_ids, pending_since FROM signal_records \
         WHERE org_id = $1 AND contact_id = $2 AND sink = $3",
    )
    .bind(key.org)
    .bind(key.contact)
    .bind(key.sink)
    .fetch_optional(&mut *conn)
    .await
    .op("reading a signal's records")?;
    Ok(r.map(|(ids, pending_since)| Records {
        external_ids: serde_json::from_str(&ids).unwrap_or_default(),
        pending_since,
    }))
}

/// Marks that `holder` is about to write to the CRM (kept from an earlier unrecorded attempt
/// when already set). Committed before the first CRM call.
pub async fn begin_write(store: &Store, key: Key<'_>, holder: i64, now_ms: i64) -> Result<()> {
    let mut conn = store.acquire().await?;
    sqlx::query(
        "UPDATE signal_records SET pending_since = COALESCE(pending_since, $5), updated_at = $5 \
         WHERE org_id = $1 AND contact_id = $2 AND sink = $3 AND holder = $4",
    )
    .bind(key.org)
    .bind(key.contact)
    .bind(key.sink)
    .bind(holder)
    .bind(now_ms)
    .execute(&mut *conn)
    .await
    .op("marking a signal's write pending")?;
    Ok(())
}

/// Records the CRM ids the person's signals to this sink have written (what the claim
/// answered and what this write added: the row is held, so nothing else changed it) and
/// releases the hold, inside the job's transaction. `false` when `holder` no longer holds the
/// row.
pub async fn record(
    conn: &mut Conn,
    key: Key<'_>,
    holder: i64,
    external: &BTreeMap<String, String>,
    now_ms: i64,
) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE signal_records SET external_ids = $5, pending_since = NULL, holder = NULL, \
         held_until = NULL, updated_at = $6 \
         WHERE org_id = $1 AND contact_id = $2 AND sink = $3 AND holder = $4",
    )
    .bind(key.org)
    .bind(key.contact)
    .bind(key.sink)
    .bind(holder)
    .bind(serde_json::to_string(external).unwrap_or_else(|_| "{}".into()))
    .bind(now_ms)
    .execute(conn)
    .await
    .op("recording a signal's records")?
    .rows_affected();
    Ok(n == 1)
}

/// Deletes the row inside the caller's transaction: a write that ended after its person's
/// erasure hands its ids to the erasure, and no record of them stays.
pub async fn forget(conn: &mut Conn, key: Key<'_>) -> Result<()> {
    sqlx::query("DELETE FROM signal_records WHERE org_id = $1 AND contact_id = $2 AND sink = $3")
        .bind(key.org)
        .bind(key.contact)
        .bind(key.sink)
        .execute(conn)
        .await
        .op("forgetting a signal's records")?;
    Ok(())
}

/// Releases the hold without a result (the pending mark stays: the CRM may hold records).
pub async fn release(store: &Store, key: Key<'_>, holder: i64, now_ms: i64) -> Result<()> {
    let mut conn = store.acquire().await?;
    sqlx::query(
        "UPDATE signal_records SET holder = NULL, held_until = NULL, updated_at = $5 \
         WHERE org_id = $1 AND contact_id = $2 AND sink = $3 AND holder = $4",
    )
    .bind(key.org)
    .bind(key.contact)
    .bind(key.sink)
    .bind(holder)
    .bind(now_ms)
    .execute(&mut *conn)
    .await
    .op("releasing a signal's records")?;
    Ok(())
}

/// Per sink, in name order: the people whose signals it wrote (rows with ids), and those with
/// an attempt that began writing and has not recorded what it wrote (the CRM may hold more
/// than the ids say until a retry records it).
pub async fn counts(store: &Store) -> Result<Vec<(String, i64, i64)>> {
    sqlx::query_as(
        "SELECT sink, COUNT(*) FILTER (WHERE external_ids <> '{}'), \
         COUNT(*) FILTER (WHERE pending_since IS NOT NULL) \
         FROM signal_records GROUP BY sink ORDER BY sink",
    )
    .fetch_all(store.pool())
    .await
    .op("counting signal records")
}
