//! Retention: what the store keeps, and for how long (docs/PRIVACY.md). Each kind has a
//! window; [`purge_batch`] removes at most `limit` rows of one kind older than its window in
//! one short transaction, so a purge running beside intake never holds the (SQLite) writer for
//! long. Times come from the caller, so a test can run thirty days in a second.
//!
//! Named leases (`leases`) let one process of many run the purge.

use std::time::Duration;

use crate::{Conn, Op, Result, Store};

/// What is kept for a limited time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Message bodies and attributes (set to NULL) and transcripts (deleted).
    MessageBodies,
    /// Stored webhook events whose jobs have all finished.
    WebhookPayloads,
    /// Jobs done or cancelled.
    FinishedJobs,
    /// Dead jobs.
    DeadJobs,
    /// Delivery records no job holds, and what lead signals wrote (`signal_records`).
    DeliveryRecords,
    /// Uses of tenants' tokens.
    TokenAudit,
    /// What the browser reported through /widget.js (the attribution derived from it stays).
    WidgetEvents,
}

impl Kind {
    /// Every kind, in purge order.
    pub const ALL: [Kind; 7] = [
        Kind::MessageBodies,
        Kind::WebhookPayloads,
        Kind::FinishedJobs,
        Kind::DeadJobs,
        Kind::DeliveryRecords,
        Kind::TokenAudit,
        Kind::WidgetEvents,
    ];

    /// Its name in metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Kind::MessageBodies => "message_bodies",
            Kind::WebhookPayloads => "webhook_payloads",
            Kind::FinishedJobs => "finished_jobs",
            Kind::DeadJobs => "dead_jobs",
            Kind::DeliveryRecords => "delivery_records",
            Kind::TokenAudit => "token_audit",
            Kind::WidgetEvents => "widget_events",
        }
    }

    /// The statements that remove up to `$2` rows older than `$1` (epoch ms); `{cutoff}` is
    /// `$1` as a warehouse timestamp.
    fn statements(self) -> &'static [&'static str] {
        match self {
            Kind::MessageBodies => &[
                "UPDATE messages SET body = NULL, attributes = NULL WHERE (org_id, id) IN \
                 (SELECT org_id, id FROM messages WHERE created_at < {cutoff} \
                 AND (body IS NOT NULL OR attributes IS NOT NULL) LIMIT $2{lock})",
                "DELETE FROM transcripts WHERE (org_id, conversation_id) IN \
                 (SELECT org_id, conversation_id FROM transcripts WHERE _synced_at < {cutoff} LIMIT $2{lock})",
            ],
            // An event whose job is still to run stays, whatever its age.
            Kind::WebhookPayloads => {
                &["DELETE FROM events WHERE id IN (SELECT e.id FROM events e \
                 WHERE e.received_at < $1 AND NOT EXISTS (SELECT 1 FROM jobs j \
                 WHERE j.event_id = e.id AND j.state IN ('queued', 'running')) LIMIT $2{lock})"]
            }
            Kind::FinishedJobs => &["DELETE FROM jobs WHERE id IN (SELECT id FROM jobs \
                 WHERE state IN ('done', 'cancelled') AND COALESCE(finished_at, updated_at) < $1 \
                 LIMIT $2{lock})"],
            Kind::DeadJobs => &["DELETE FROM jobs WHERE id IN (SELECT id FROM jobs \
                 WHERE state = 'dead' AND COALESCE(finished_at, updated_at) < $1 LIMIT $2{lock})"],
            Kind::DeliveryRecords => &[
                "DELETE FROM deliveries WHERE (org_id, conversation_id, sink) IN \
                 (SELECT org_id, conversation_id, sink FROM deliveries WHERE updated_at < $1 \
                 AND (holder IS NULL OR held_until < $1) LIMIT $2{lock})",
                "DELETE FROM signal_records WHERE (org_id, contact_id, sink) IN \
                 (SELECT org_id, contact_id, sink FROM signal_records WHERE updated_at < $1 \
                 LIMIT $2{lock})",
            ],
            Kind::TokenAudit => &["DELETE FROM token_audit WHERE id IN \
                 (SELECT id FROM token_audit WHERE at < $1 LIMIT $2{lock})"],
            Kind::WidgetEvents => &[
                "DELETE FROM widget_events WHERE (org_id, site, event_id) IN \
                 (SELECT org_id, site, event_id FROM widget_events WHERE received_at < {cutoff} \
                 LIMIT $2{lock})",
            ],
        }
    }
}

/// A window per kind; `None` keeps that kind forever.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Windows(pub Vec<(Kind, Option<Duration>)>);

impl Windows {
    /// The window of `kind`.
    pub fn of(&self, kind: Kind) -> Option<Duration> {
        self.0
            .iter()
            .find(|(k, _)| *k == kind)
            .and_then(|(_, w)| *w)
    }
}

/// Removes up to `limit` rows of `kind` older than `cutoff_ms` in one transaction; answers
/// how many (a statement per table the kind covers, each up to `limit`).
///
/// On PostgreSQL a batch skips the rows another transaction holds (`FOR UPDATE SKIP LOCKED`;
/// a later batch or run takes them): the purge meets rows in the order its scan finds them,
/// not in key order as jobs write them, and waiting on a job's row while holding one the job
/// wants next was a deadlock that failed one of the two. Skipping, it never waits on a row.
pub async fn purge_batch(store: &Store, kind: Kind, cutoff_ms: i64, limit: i64) -> Result<u64> {
    let mut tx = store.begin_redoable().await?;
    let mut n = 0;
    let cutoff = crate::tables::sql::at(store.backend(), "$1");
    let lock = store.backend().skip_locked();
    for sql in kind.statements() {
        let sql = sql.replace("{cutoff}", &cutoff).replace("{lock}", lock);
        n += sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(cutoff_ms)
            .bind(limit)
            .execute(&mut *tx)
            .await
            .op("purging expired rows")?
            .rows_affected();
    }
    tx.commit().await.op("committing a purge")?;
    Ok(n)
}

/// Takes (or renews) the lease `name` for `holder` until `until_ms`; false when another
/// holder's lease has not expired at `now_ms`.
pub async fn try_lease(
    conn: &mut Conn,
    name: &str,
    holder: &str,
    now_ms: i64,
    until_ms: i64,
) -> Result<bool> {
    let n = sqlx::query(
        "INSERT INTO leases (name, holder, lease_until) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until \
         WHERE leases.holder = excluded.holder OR leases.lease_until < $4",
    )
    .bind(name)
    .bind(holder)
    .bind(until_ms)
    .bind(now_ms)
    .execute(conn)
    .await
    .op("taking a lease")?
    .rows_affected();
    Ok(n > 0)
}

/// Gives the lease back.
pub async fn release_lease(conn: &mut Conn, name: &str, holder: &str) -> Result<()> {
    sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
        .bind(name)
        .bind(holder)
        .execute(conn)
        .await
        .op("releasing a lease")?;
    Ok(())
}
