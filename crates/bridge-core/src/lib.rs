#![doc = include_str!("../README.md")]

pub mod deliver;
pub mod drift;
pub mod export;
pub mod ingest;
pub mod jobs;
pub mod metrics;
pub mod schedule;
pub mod sink_secrets;
pub mod sync;
pub mod tenants;

/// Locks a mutex, taking the data of a poisoned one: every value behind these mutexes is
/// valid after any single update, so a panicked holder leaves nothing half-written.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Epoch milliseconds now.
pub fn now_ms() -> i64 {
    drift_types::EpochMillis::now().0
}
