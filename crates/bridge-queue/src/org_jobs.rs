//! An org's jobs at once: a disconnect cancels them, a reconnect puts them back.
//!
//! Each statement takes its rows' locks in id order, as every other writer of several jobs
//! does (an erasure rewrites the jobs that mention a person one by one, by id). A plain
//! multi-row `UPDATE` on PostgreSQL locks rows in the order its scan meets them, which is
//! where each row's latest version lies, so it could hold a later job while waiting on an
//! earlier one, and deadlock with an erasure holding the earlier one and waiting on it.

use bridge_store::{Backend, Conn, Op};

use crate::Result;

/// Cancels every queued job of the org (a disconnected tenant), in the caller's
/// transaction, with `reason` as their last error; answers how many.
pub async fn cancel_org(conn: &mut Conn, org: i64, reason: &str, now_ms: i64) -> Result<u64> {
    update_org(
        conn,
        "state = 'cancelled', finished_at = $2, updated_at = $2, last_error = $3",
        "state = 'queued'",
        (org, reason, now_ms),
        "cancelling an org's jobs",
    )
    .await
}

/// Puts back the org's jobs that were cancelled with `reason` (a disconnect's), with fresh
/// attempts, in the caller's transaction; answers how many.
pub async fn requeue_cancelled_org(
    conn: &mut Conn,
    org: i64,
    reason: &str,
    now_ms: i64,
) -> Result<u64> {
    update_org(
        conn,
        "state = 'queued', attempts = 0, run_at = $2, finished_at = NULL, updated_at = $2, \
         last_error = NULL",
        "state = 'cancelled' AND last_error = $3",
        (org, reason, now_ms),
        "putting back an org's cancelled jobs",
    )
    .await
}

/// `UPDATE jobs SET {set}` on the org's jobs matching `filter`, locked in id order; `$1` is
/// the org, `$2` now and `$3` the reason.
async fn update_org(
    conn: &mut Conn,
    set: &str,
    filter: &str,
    (org, reason, now_ms): (i64, &str, i64),
    op: &'static str,
) -> Result<u64> {
    let sql = format!(
        "UPDATE jobs SET {set} WHERE id IN (SELECT id FROM jobs WHERE org_id = $1 AND {filter}{})",
        Backend::of(conn).locked_in_id_order()
    );
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org)
        .bind(now_ms)
        .bind(reason)
        .execute(conn)
        .await
        .op(op)?
        .rows_affected())
}
