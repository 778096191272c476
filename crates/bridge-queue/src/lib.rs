#![doc = include_str!("../README.md")]

mod enqueue;
mod error;
mod intake;
mod listing;
mod org_jobs;
mod queue;
mod worker;

pub use error::{Error, Result};
pub use intake::{INTAKE_YIELD, IntakeGuard};
pub use listing::{JobFilter, JobSummary, KindDepth};
pub use org_jobs::{cancel_org, requeue_cancelled_org};
pub use queue::{Failed, Job, JobRow, JobState, NewJob, Queue, QueueConfig};
pub use worker::{Handler, JobCtx, JobError, WorkerConfig, WorkerStats, run_workers};
