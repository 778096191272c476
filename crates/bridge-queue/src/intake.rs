//! Webhooks waiting to be stored in this process, counted so that the workers can let
//! intake go first: acknowledging Drift (which times out and retries) comes before working off
//! jobs that are already safe in the queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// Webhooks waiting to be stored in this process: while there are some, the workers hold
/// back their next claim a little, so acknowledging Drift (which times out and retries)
/// comes before working off jobs that are already safe in the queue.
#[derive(Debug, Default)]
pub(crate) struct Intake {
    pub(crate) pending: AtomicUsize,
    pub(crate) idle: Notify,
}

/// Longest a worker holds back its next claim for intake: under a sustained flood the
/// workers still claim a batch every 20 ms, so the queue keeps draining.
pub const INTAKE_YIELD: Duration = Duration::from_millis(20);

/// Longest a job's transaction waits for webhooks that are being stored: on SQLite's one
/// connection each job statement would otherwise queue in front of intake's commit. Short,
/// so a steady stream of webhooks slows the jobs only a little.
pub(crate) const INTAKE_FIRST: Duration = Duration::from_millis(2);

/// Counts one webhook waiting to be stored until dropped.
#[derive(Debug)]
pub struct IntakeGuard(pub(crate) Arc<Intake>);

impl Drop for IntakeGuard {
    fn drop(&mut self) {
        if self.0.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
