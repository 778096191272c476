#![doc = include_str!("../README.md")]

pub mod drift;
pub mod ingest;
pub mod jobs;
pub mod metrics;
pub mod sync;

/// Epoch milliseconds now.
pub fn now_ms() -> i64 {
    drift_types::EpochMillis::now().0
}
