//! Scheduled reconciliation: every `interval`, an incremental sync of each org into the
//! serve database, so a webhook that never arrived is caught by the next walk.
//!
//! Each org's sync holds the org's lease row (`sync_locks`, `bridge_export::lease`), as a
//! command-line export or sync into the same database does. Only the holder runs; a process
//! that loses its lease (it stalled past the lease) abandons the run, so no two runs of one
//! org ever overlap, in one process or across processes sharing a PostgreSQL database.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use bridge_export::Destination;
use bridge_export::lease::{self, Leased};
use bridge_store::Store;
use drift_types::OrgId;
use tokio::sync::watch;

use crate::drift::DriftPool;
use crate::metrics::{Metrics, labels};
use bridge_export::{self as export, ExportOptions, Mode, Progress, Summary};

/// What the scheduler runs.
#[derive(Clone, Debug)]
pub struct ScheduleConfig {
    /// Time between the starts of two syncs of one org.
    pub interval: Duration,
    /// Orgs to sync.
    pub orgs: Vec<OrgId>,
    /// Lease length.
    pub lease: Duration,
    /// Overlap below the high-water mark.
    pub overlap: Duration,
    /// This process's name in the lease table.
    pub holder: String,
}

/// How one scheduled run ended.
#[derive(Debug)]
pub enum Outcome {
    /// It ran.
    Synced(Summary),
    /// Another holder's lease is running.
    Busy,
    /// The lease was lost mid-run; the run was abandoned.
    LeaseLost,
    /// The tenant disconnected; its syncs have stopped.
    Disconnected,
}

/// Runs the schedule until `shutdown` turns true.
pub async fn run(
    store: Store,
    drift: Arc<DriftPool>,
    metrics: Arc<Metrics>,
    cfg: ScheduleConfig,
    shutdown: watch::Receiver<bool>,
) {
    let tasks: Vec<_> = cfg
        .orgs
        .iter()
        .map(|org| {
            let (store, drift, metrics, cfg, mut shutdown) = (
                store.clone(),
                drift.clone(),
                metrics.clone(),
                cfg.clone(),
                shutdown.clone(),
            );
            let org = *org;
            tokio::spawn(async move {
                loop {
                    let result = tokio::select! {
                        r = sync_once(&store, &drift, org, &cfg) => r,
                        _ = shutdown.wait_for(|s| *s) => return,
                    };
                    let outcome = match &result {
                        Ok(Outcome::Synced(s)) => {
                            tracing::info!(
                                org.id = org.0,
                                rows.changed = s.rows_changed,
                                conversations.fetched = s.conversations_fetched,
                                api.calls = s.api_calls,
                                "scheduled sync done"
                            );
                            "ok"
                        }
                        Ok(Outcome::Busy) => "busy",
                        Ok(Outcome::LeaseLost) => "lease_lost",
                        Ok(Outcome::Disconnected) => "disconnected",
                        Err(e) => {
                            tracing::warn!(
                                org.id = org.0,
                                error = format!("{e:#}"),
                                "scheduled sync failed"
                            );
                            "error"
                        }
                    };
                    metrics.inc(
                        "driftbridge_scheduled_syncs_total",
                        "Scheduled reconciliation syncs by outcome.",
                        labels(&[("outcome", outcome)]),
                        1,
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(cfg.interval) => {}
                        _ = shutdown.wait_for(|s| *s) => return,
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

/// One sync of `org` if its lease is free.
pub async fn sync_once(
    store: &Store,
    drift: &DriftPool,
    org: OrgId,
    cfg: &ScheduleConfig,
) -> Result<Outcome> {
    if let Some(t) = drift.tenants()
        && t.disconnected(org).await?
    {
        return Ok(Outcome::Disconnected);
    }
    // An export waits for its budget: it is the only work of its own task. The client comes
    // before the lease, so that failing to get one leaves no lease behind.
    let client = drift.client(org).await?.with_max_budget_wait(None);
    let mut opts = ExportOptions::new(Mode::Incremental);
    opts.overlap_ms = cfg.overlap.as_millis() as i64;
    let started = drift_types::now_ms();
    let sync = async {
        let r = export::run(
            client,
            Destination::store(store.clone(), org),
            org,
            opts,
            Arc::new(Progress::default()),
        )
        .await;
        export::runs::record(store, org, "scheduled", "database", started, &r).await;
        r
    };
    Ok(
        match lease::hold(store, org, &cfg.holder, cfg.lease, sync).await? {
            Leased::Ran(r) => Outcome::Synced(r?),
            Leased::Busy(_) => Outcome::Busy,
            Leased::Lost => Outcome::LeaseLost,
        },
    )
}
