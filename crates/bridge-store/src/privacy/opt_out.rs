//! Email opt-outs, kept as digests (`opt_outs`): a CRM record created after the person opted
//! out carries the flag from its first write.

use super::key::SubjectKey;
use crate::{Conn, Op, Result};

/// Records that the person with `email` opted out of emails in `org` (at `at_ms`), inside the
/// caller's transaction.
pub async fn record_opt_out(conn: &mut Conn, org: i64, email: &str, at_ms: i64) -> Result<()> {
    let key = SubjectKey::load_or_create(conn).await?;
    sqlx::query(
        "INSERT INTO opt_outs (org_id, digest, opted_out_at) VALUES ($1, $2, $3) \
         ON CONFLICT (org_id, digest) DO NOTHING",
    )
    .bind(org)
    .bind(key.email(email))
    .bind(at_ms)
    .execute(&mut *conn)
    .await
    .op("recording an opt-out")?;
    Ok(())
}

/// Whether the person with `email` opted out of emails in `org`.
pub async fn opted_out(conn: &mut Conn, org: i64, email: &str) -> Result<bool> {
    Ok(opted_out_at(conn, org, email).await?.is_some())
}

/// When the person with `email` opted out of emails in `org`, if they did.
pub(super) async fn opted_out_at(conn: &mut Conn, org: i64, email: &str) -> Result<Option<i64>> {
    let Some(key) = SubjectKey::load(conn).await? else {
        return Ok(None); // no opt-out (nor erasure) was ever recorded
    };
    sqlx::query_scalar("SELECT opted_out_at FROM opt_outs WHERE org_id = $1 AND digest = $2")
        .bind(org)
        .bind(key.email(email))
        .fetch_optional(&mut *conn)
        .await
        .op("reading opt-outs")
}

/// Forgets the person's opt-out (their erasure: nothing of them is kept but the tombstones).
pub(super) async fn forget(
    conn: &mut Conn,
    key: &SubjectKey,
    org: i64,
    email: &str,
) -> Result<u64> {
    Ok(
        sqlx::query("DELETE FROM opt_outs WHERE org_id = $1 AND digest = $2")
            .bind(org)
            .bind(key.email(email))
            .execute(&mut *conn)
            .await
            .op("erasing an opt-out")?
            .rows_affected(),
    )
}
