//! The scheduled retention purge (`[retention]`): every `interval`, the process that holds the
//! `retention` lease removes what is older than each kind's window, `batch` rows per short
//! transaction with a `pause` between them, so intake never waits behind it for long.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use bridge_store::Store;
use bridge_store::retention::{self, Kind, Windows};
use tokio::sync::watch;

use crate::metrics::{Metrics, labels};

/// The lease's name.
const LEASE: &str = "retention";

/// What the purge does and how often.
#[derive(Clone, Debug)]
pub struct RetentionConfig {
    /// Each kind's window.
    pub windows: Windows,
    /// Between two purges.
    pub interval: Duration,
    /// Rows per transaction.
    pub batch: i64,
    /// Between two transactions: room for intake's commits.
    pub pause: Duration,
    /// How long a process holds the purge before another may take it.
    pub lease: Duration,
    /// This process's name in the lease table.
    pub holder: String,
}

/// Rows removed by kind in one purge.
pub type Removed = BTreeMap<&'static str, u64>;

/// One purge as of `now_ms`: every kind with a window, oldest rows first, in batches. It takes
/// (or renews) the `retention` lease before each batch, and stops, answering what it did, while
/// another process holds it.
pub async fn purge(store: &Store, cfg: &RetentionConfig, now_ms: i64) -> Result<Removed> {
    let mut out = Removed::new();
    let lease_ms = cfg.lease.as_millis() as i64;
    for kind in Kind::ALL {
        let Some(window) = cfg.windows.of(kind) else {
            continue;
        };
        let cutoff = now_ms - window.as_millis() as i64;
        loop {
            {
                let mut conn = store.acquire().await?;
                let now = drift_types::now_ms();
                if !retention::try_lease(&mut conn, LEASE, &cfg.holder, now, now + lease_ms).await?
                {
                    return Ok(out);
                }
            }
            let n = retention::purge_batch(store, kind, cutoff, cfg.batch).await?;
            *out.entry(kind.name()).or_insert(0) += n;
            if n < cfg.batch as u64 {
                break;
            }
            tokio::time::sleep(cfg.pause).await;
        }
    }
    Ok(out)
}

/// Runs the purge every `interval` until `shutdown` turns true.
pub async fn run(
    store: Store,
    cfg: RetentionConfig,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        // The first purge waits one interval too: a process that restarts often does not purge
        // on every start.
        tokio::select! {
            _ = tokio::time::sleep(cfg.interval) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        // `purge` takes the lease before each batch, and does nothing while another holds it.
        let now = drift_types::now_ms();
        let result = tokio::select! {
            r = async {
                let removed = purge(&store, &cfg, now).await?;
                let mut conn = store.acquire().await?;
                retention::release_lease(&mut conn, LEASE, &cfg.holder).await?;
                anyhow::Ok(removed)
            } => r,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        match result {
            Ok(removed) => {
                for (kind, n) in &removed {
                    metrics.inc(
                        "driftbridge_retention_purged_total",
                        "Rows removed (or message bodies cleared) by the retention purge, by kind.",
                        labels(&[("kind", kind)]),
                        *n,
                    );
                }
                if removed.values().any(|n| *n > 0) {
                    tracing::info!(removed = ?removed, "retention purge done");
                }
            }
            Err(e) => tracing::warn!(error = format!("{e:#}"), "retention purge failed"),
        }
    }
}
