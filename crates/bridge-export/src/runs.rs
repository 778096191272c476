//! A finished export or sync, recorded in the database it wrote to (the console's Syncs page
//! and the `driftbridge_last_sync_success_timestamp_seconds` metric read it).

use bridge_store::Store;
use bridge_store::ops::runs::{self, Run};
use drift_types::OrgId;

use crate::Summary;

/// Records the run that started at `started_at` (epoch ms) and ended with `result`. A failure
/// to record is logged, never the run's own failure.
pub async fn record(
    store: &Store,
    org: OrgId,
    mode: &str,
    destination: &str,
    started_at: i64,
    result: &anyhow::Result<Summary>,
) {
    let (outcome, rows, calls, limited, error) = match result {
        Ok(s) => (
            "ok",
            s.rows.values().sum::<u64>(),
            s.api_calls,
            s.responses_429,
            None,
        ),
        Err(e) => ("error", 0, 0, 0, Some(format!("{e:#}"))),
    };
    let run = Run {
        id: 0,
        org_id: org.0,
        mode: mode.to_owned(),
        destination: destination.to_owned(),
        started_at,
        finished_at: drift_types::now_ms(),
        outcome: outcome.to_owned(),
        rows_written: rows as i64,
        calls: calls as i64,
        rate_limited: limited as i64,
        error,
    };
    if let Err(e) = runs::record(store, &run).await {
        tracing::warn!(org.id = org.0, error = %e, "recording the sync run failed");
    }
}
