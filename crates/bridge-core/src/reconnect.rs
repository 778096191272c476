//! Bringing a disconnected tenant back. `driftbridge tenants restore ORG` and a re-install
//! make the org active again and queue again what the disconnect stopped: the jobs it
//! cancelled, and the jobs of every event that arrived while it was disconnected (those
//! events were kept, their jobs skipped).
//!
//! Guarantee: nothing that arrived while the org was disconnected stays skipped. The flip to
//! active, the cancelled jobs and the events read so far are one transaction; events that
//! commit while it runs are read again after it (their jobs may then run twice, which every
//! job tolerates: they are upserts).

use anyhow::Result;
use bridge_queue::Queue;
use bridge_store::tenants as store_tenants;
use bridge_store::{Conn, Op, events};
use drift_client::TokenSet;
use drift_types::OrgId;
use serde::Serialize;

use crate::jobs::jobs_for_stored;
use crate::tenants::{DISCONNECT_CANCEL, Tenants};

/// Events read per query while queueing them again.
const PAGE: i64 = 500;

/// What bringing an org back did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Reconnected {
    /// The org was disconnected (otherwise nothing was queued).
    pub was_revoked: bool,
    /// Jobs the disconnect had cancelled, queued again.
    pub jobs_requeued: u64,
    /// Events that arrived while disconnected whose jobs were queued again.
    pub events_replayed: u64,
    /// Of those, events whose data this release cannot read (listed by `events malformed`).
    pub events_unreadable: u64,
}

/// `tenants restore ORG`: makes a revoked org active again. The caller checks first that a
/// token will speak for it (a configured one; an OAuth tenant's tokens were deleted by the
/// disconnect and only a re-install brings them back).
pub async fn restore(tenants: &Tenants, queue: &Queue, org: OrgId) -> Result<Reconnected> {
    let Some(t) = tenants.get(org).await? else {
        return Ok(Reconnected::default());
    };
    let (Some(since), "revoked") = (t.revoked_at, t.status.as_str()) else {
        return Ok(Reconnected::default());
    };
    let mut tx = queue.store().begin().await?;
    let now = drift_types::now_ms();
    if !store_tenants::mark_restored(&mut tx, org, now).await? {
        // Another process restored it meanwhile, and queued what was skipped.
        return Ok(Reconnected::default());
    }
    let mut out = requeue(&mut tx, queue, org, since, 0).await?;
    tx.commit().await.op("committing a restore")?;
    out.1.was_revoked = true;
    after_commit(queue, org, since, out).await
}

/// An install through the OAuth flow; a re-install of a disconnected org also queues again
/// what its disconnect stopped.
pub async fn install(
    tenants: &Tenants,
    queue: &Queue,
    org: OrgId,
    tokens: &TokenSet,
    scopes: Option<&str>,
    installed_by: Option<&str>,
) -> Result<Reconnected> {
    let revoked_at = tenants
        .get(org)
        .await?
        .filter(|t| t.status == "revoked")
        .and_then(|t| t.revoked_at);
    let mut tx = queue.store().begin().await?;
    tenants
        .install_in(&mut tx, org, tokens, scopes, installed_by)
        .await?;
    let Some(since) = revoked_at else {
        tx.commit().await.op("committing an install")?;
        return Ok(Reconnected::default());
    };
    let mut out = requeue(&mut tx, queue, org, since, 0).await?;
    tx.commit().await.op("committing a re-install")?;
    out.1.was_revoked = true;
    after_commit(queue, org, since, out).await
}

/// The second pass: events that committed while the first transaction ran.
async fn after_commit(
    queue: &Queue,
    org: OrgId,
    since: i64,
    (last_id, mut out): (i64, Reconnected),
) -> Result<Reconnected> {
    let mut tx = queue.store().begin().await?;
    let (_, late) = requeue(&mut tx, queue, org, since, last_id).await?;
    tx.commit().await.op("committing a restore")?;
    out.events_replayed += late.events_replayed;
    out.events_unreadable += late.events_unreadable;
    queue.wake();
    Ok(out)
}

/// Queues the cancelled jobs (first pass only) and the jobs of the org's events since
/// `since` with ids above `after_id`; answers the last event id read.
async fn requeue(
    conn: &mut Conn,
    queue: &Queue,
    org: OrgId,
    since: i64,
    mut after_id: i64,
) -> Result<(i64, Reconnected)> {
    let now = drift_types::now_ms();
    let mut out = Reconnected::default();
    if after_id == 0 {
        out.jobs_requeued =
            bridge_queue::requeue_cancelled_org(conn, org.0, DISCONNECT_CANCEL, now).await?;
    }
    loop {
        let page = events::for_org_since(conn, org.0, since, after_id, PAGE).await?;
        let Some(last) = page.last() else { break };
        after_id = last.id;
        let mut jobs = Vec::new();
        for ev in page {
            // The disconnect itself is not replayed.
            if ev.event_type == "app_disconnected" {
                continue;
            }
            match jobs_for_stored(&ev) {
                Ok(made) if made.is_empty() => {}
                Ok(made) => {
                    jobs.extend(made);
                    out.events_replayed += 1;
                }
                Err(_) => out.events_unreadable += 1,
            }
        }
        queue.enqueue_many(conn, &jobs, now).await?;
    }
    Ok((after_id, out))
}
