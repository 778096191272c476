//! The admin audit: every state-changing action taken through the console, who took it and
//! when. Kept as long as the database (an operator trims it with SQL if they must).

use crate::{Conn, Op, Result, Store};

/// One audited action.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Action {
    /// Row id.
    pub id: i64,
    /// When (epoch ms).
    pub at: i64,
    /// Who: the role and the session that acted (`admin:3f2a…`), never a token.
    pub actor: String,
    /// What: `job.retry`, `jobs.retry_matching`, `job.cancel`, `conversation.replay`,
    /// `tenant.revoke`, `tenant.restore`.
    pub action: String,
    /// On what (`job 42`, `org 7`).
    pub target: String,
    /// The outcome in words.
    pub detail: String,
}

/// Records an action inside the caller's transaction (or on its own connection).
pub async fn record(
    conn: &mut Conn,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO admin_audit (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(now_ms)
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(detail)
    .execute(conn)
    .await
    .op("recording an admin action")?;
    Ok(())
}

/// The newest actions first.
pub async fn list(store: &Store, limit: i64) -> Result<Vec<Action>> {
    let rows: Vec<(i64, i64, String, String, String, String)> = sqlx::query_as(
        "SELECT id, at, actor, action, target, detail FROM admin_audit ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(store.pool())
    .await
    .op("reading the admin audit")?;
    Ok(rows
        .into_iter()
        .map(|(id, at, actor, action, target, detail)| Action {
            id,
            at,
            actor,
            action,
            target,
            detail,
        })
        .collect())
}
