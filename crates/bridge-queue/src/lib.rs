#![doc = include_str!("../README.md")]

mod queue;
mod worker;

pub use queue::{Failed, Job, JobRow, JobState, NewJob, Queue, QueueConfig, cancel_org};
pub use worker::{Handler, JobCtx, JobError, WorkerConfig, WorkerStats, run_workers};

/// What went wrong in the queue.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] bridge_store::Error),
    /// The job's lease was taken over by another attempt; this worker must not touch it.
    #[error("job {id} attempt {attempt}: the lease was lost to a newer attempt")]
    LeaseLost {
        /// Job id.
        id: i64,
        /// The stale attempt.
        attempt: i64,
    },
}

/// Queue result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
