#![doc = include_str!("../README.md")]

mod error;
mod queue;
mod worker;

pub use error::{Error, Result};
pub use queue::{
    Failed, Job, JobRow, JobState, NewJob, Queue, QueueConfig, cancel_org, requeue_cancelled_org,
};
pub use worker::{Handler, JobCtx, JobError, WorkerConfig, WorkerStats, run_workers};
