//! What every job runs with: the Drift clients, the metrics and the CRM sinks; and the one
//! way a job writes rows and completes in the same transaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bridge_queue::{JobCtx, JobError};
use bridge_sinks::registry::{NamedSink, Sinks};
use bridge_store::tables::Batch;
use bridge_store::warehouse;
use drift_types::OrgId;
use parking_lot::Mutex;

use crate::drift::DriftPool;
use crate::metrics::Metrics;

/// Runs every job this crate defines.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Drift clients per org.
    pub drift: Arc<DriftPool>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// CRM/MAP sinks (none configured: conversations go to the warehouse only).
    pub sinks: Sinks,
    /// When each disconnected org's skipped jobs were last logged.
    pub skips: Arc<SkipNotices>,
    /// Orgs whose Drift budget is spent, until when.
    pub pauses: Arc<OrgPauses>,
}

/// Orgs whose Drift budget a job found spent, each until it has room again: the workers'
/// claims leave their queued jobs alone meanwhile.
#[derive(Debug, Default)]
pub struct OrgPauses {
    until: Mutex<HashMap<OrgId, Instant>>,
}

impl OrgPauses {
    /// Pauses `org` until `until` (a later pause wins).
    pub fn pause(&self, org: OrgId, until: Instant) {
        let mut m = self.until.lock();
        let e = m.entry(org).or_insert(until);
        if *e < until {
            *e = until;
        }
    }

    /// The orgs still paused at `now` (and forgets the others).
    pub fn paused(&self, now: Instant) -> Vec<i64> {
        let mut m = self.until.lock();
        m.retain(|_, until| *until > now);
        m.keys().map(|o| o.0).collect()
    }
}

/// How often the skipped jobs of one disconnected org are logged: every five minutes is seen
/// in any log window an operator looks at, while a flood of events for that org cannot fill
/// the log.
pub const SKIP_NOTICE_INTERVAL: Duration = Duration::from_secs(300);

/// Skipped jobs per disconnected org since its last log line.
#[derive(Debug, Default)]
pub struct SkipNotices {
    orgs: Mutex<HashMap<OrgId, (Option<Instant>, u64)>>,
}

impl SkipNotices {
    /// Counts one skipped job of `org`; when a log line is due (the first skip, or
    /// [`SKIP_NOTICE_INTERVAL`] after the last line) answers how many it covers.
    pub fn skipped(&self, org: OrgId, now: Instant) -> Option<u64> {
        let mut orgs = self.orgs.lock();
        let (last, n) = orgs.entry(org).or_default();
        *n += 1;
        let due = last.is_none_or(|at| now.duration_since(at) >= SKIP_NOTICE_INTERVAL);
        if !due {
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(n))
    }
}

impl Pipeline {
    /// Fetches the org's contact from Drift, its failure classified for the queue.
    pub(crate) async fn contact(
        &self,
        org: OrgId,
        id: drift_types::ContactId,
    ) -> Result<drift_types::Contact, JobError> {
        let client = self.drift.client(org).await?;
        client
            .contact(id)
            .await
            .map_err(|e| crate::failure::drift_error(e, "the contact"))
    }
}

/// The sink named `name`; a job naming one that is not configured cannot succeed.
pub(crate) fn configured<'a>(sinks: &'a Sinks, name: &str) -> Result<&'a Arc<NamedSink>, JobError> {
    sinks.get(name).ok_or_else(|| {
        JobError::Permanent(anyhow::anyhow!(
            "no sink named {name:?} is configured (configured: {})",
            sinks.names().join(", ")
        ))
    })
}

/// Writes the rows and completes the job in one transaction.
pub(crate) async fn write(ctx: &mut JobCtx, b: Batch) -> Result<(), JobError> {
    let mut tx = ctx.begin().await?;
    let (_, scrubbed) = warehouse::write_checked(&mut tx, &b).await?;
    if scrubbed.rows > 0 {
        // Rows of an erased person: the job's arguments and its event held them too.
        bridge_store::privacy::forget_job_data(&mut tx, ctx.job.id, ctx.job.event_id).await?;
    }
    ctx.finish(tx).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disconnected_orgs_skips_are_logged_once_per_interval_with_their_count() {
        let notices = SkipNotices::default();
        let t0 = Instant::now();
        let (a, b) = (OrgId(1), OrgId(2));
        assert_eq!(notices.skipped(a, t0), Some(1));
        assert_eq!(notices.skipped(a, t0 + Duration::from_secs(1)), None);
        assert_eq!(notices.skipped(a, t0 + Duration::from_secs(299)), None);
        // Another org has its own interval.
        assert_eq!(notices.skipped(b, t0 + Duration::from_secs(2)), Some(1));
        // The next line covers the two held back and this one.
        assert_eq!(notices.skipped(a, t0 + SKIP_NOTICE_INTERVAL), Some(3));
        assert_eq!(notices.skipped(a, t0 + SKIP_NOTICE_INTERVAL), None);
    }

    #[test]
    fn an_org_is_paused_until_its_latest_pause_ends() {
        let p = OrgPauses::default();
        let t0 = Instant::now();
        p.pause(OrgId(1), t0 + Duration::from_secs(2));
        p.pause(OrgId(1), t0 + Duration::from_secs(1));
        p.pause(OrgId(2), t0 + Duration::from_secs(1));
        let mut now = p.paused(t0);
        now.sort();
        assert_eq!(now, vec![1, 2]);
        assert_eq!(p.paused(t0 + Duration::from_millis(1500)), vec![1]);
        assert!(p.paused(t0 + Duration::from_secs(2)).is_empty());
    }
}
