//! What every job runs with: the Drift clients, the metrics and the CRM sinks; and the one
//! way a job writes rows and completes in the same transaction.

use std::sync::Arc;

use bridge_queue::{JobCtx, JobError};
use bridge_sinks::registry::Sinks;
use bridge_store::tables::Batch;
use bridge_store::warehouse;

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
}

/// Writes the rows and completes the job in one transaction.
pub(crate) async fn write(ctx: &mut JobCtx, b: Batch) -> Result<(), JobError> {
    let mut tx = ctx.queue().store().begin().await?;
    warehouse::write(&mut tx, &b).await?;
    ctx.finish(tx).await
}
