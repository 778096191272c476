//! An org's jobs at once: a disconnect cancels them, a reconnect puts them back.

use bridge_store::{Conn, Op};

use crate::Result;

/// Cancels every queued job of the org (a disconnected tenant), in the caller's
/// transaction, with `reason` as their last error; answers how many.
pub async fn cancel_org(conn: &mut Conn, org: i64, reason: &str, now_ms: i64) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE jobs SET state = 'cancelled', finished_at = $2, updated_at = $2, \
         last_error = $3 WHERE org_id = $1 AND state = 'queued'",
    )
    .bind(org)
    .bind(now_ms)
    .bind(reason)
    .execute(conn)
    .await
    .op("cancelling an org's jobs")?
    .rows_affected())
}

/// Puts back the org's jobs that were cancelled with `reason` (a disconnect's), with fresh
/// attempts, in the caller's transaction; answers how many.
pub async fn requeue_cancelled_org(
    conn: &mut Conn,
    org: i64,
    reason: &str,
    now_ms: i64,
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $2, finished_at = NULL, \
         updated_at = $2, last_error = NULL \
         WHERE org_id = $1 AND state = 'cancelled' AND last_error = $3",
    )
    .bind(org)
    .bind(now_ms)
    .bind(reason)
    .execute(conn)
    .await
    .op("putting back an org's cancelled jobs")?
    .rows_affected())
}
