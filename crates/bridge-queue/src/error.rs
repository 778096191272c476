//! What went wrong in the queue.

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
    /// A stored job has a state this release does not know.
    #[error("job {id} has the unknown state {state:?}")]
    UnknownState {
        /// Job id.
        id: i64,
        /// The stored state.
        state: String,
    },
}

/// Queue result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
