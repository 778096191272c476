//! Live counters of a run, its summary, and the time it has left.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bridge_store::tables::{Batch, TABLES};
use serde::Serialize;

use super::options::Mode;

/// Live counters, read by the progress display while the run goes on.
#[derive(Debug, Default)]
pub struct Progress {
    rows: [AtomicU64; TABLES.len()],
    /// Rows that changed in the destination.
    pub changed: AtomicU64,
    /// Conversations listed so far.
    pub listed: AtomicU64,
    /// Conversations fetched (details, messages, transcript).
    pub fetched: AtomicU64,
    /// Listed conversations skipped because the stored copy is current.
    pub unchanged: AtomicU64,
    /// Attachments whose bytes were saved (`--attachments`).
    pub attachments_saved: AtomicU64,
    /// Conversations in the org, when known (for the ETA).
    pub total: AtomicU64,
}

impl Progress {
    /// Rows sent so far, per table.
    pub fn rows(&self) -> Vec<(&'static str, u64)> {
        TABLES
            .iter()
            .zip(self.rows.iter())
            .map(|(t, n)| (t.name, n.load(Ordering::Relaxed)))
            .collect()
    }

    pub(crate) fn count(&self, b: &Batch) {
        for (t, rows) in b.tables() {
            self.rows[t.position()].fetch_add(rows.len() as u64, Ordering::Relaxed);
        }
    }
}

/// What a run did.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Full or incremental.
    pub mode: Mode,
    /// Rows sent to the destination, per table.
    pub rows: BTreeMap<&'static str, u64>,
    /// Rows that changed in the destination (SQL) or were written (files).
    pub rows_changed: u64,
    /// Conversations listed.
    pub conversations_listed: u64,
    /// Conversations fetched.
    pub conversations_fetched: u64,
    /// Conversations skipped as unchanged.
    pub conversations_unchanged: u64,
    /// Stored conversations found deleted in Drift and marked (a sync's sweep).
    pub conversations_deleted: u64,
    /// Attachments whose bytes were saved (`--attachments DIR`).
    pub attachments_saved: u64,
    /// HTTP requests to Drift, retries included.
    pub api_calls: u64,
    /// 429 answers.
    pub responses_429: u64,
    /// Retried requests.
    pub retries: u64,
    /// Wall time.
    pub seconds: f64,
}

/// How long until a run finishes, from what is left and the rate so far, never faster than
/// the rate limit allows (`calls_per_conversation` calls each, `limit_per_minute` a minute).
pub fn eta(
    remaining_conversations: u64,
    conversations_per_sec: f64,
    calls_per_conversation: f64,
    limit_per_minute: u32,
) -> Option<Duration> {
    let by_rate = (conversations_per_sec > 0.0)
        .then(|| remaining_conversations as f64 / conversations_per_sec);
    let by_limit = (limit_per_minute > 0).then(|| {
        remaining_conversations as f64 * calls_per_conversation
            / (f64::from(limit_per_minute) / 60.0)
    });
    match (by_rate, by_limit) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
    .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eta_never_beats_the_rate_limit() {
        // 1,000 conversations at 4 calls each under 600/min take at least 400 s, however
        // fast the first ones went.
        let e = eta(1000, 100.0, 4.0, 600).unwrap();
        assert_eq!(e.as_secs(), 400);
        let e = eta(1000, 1.0, 4.0, 600).unwrap();
        assert_eq!(e.as_secs(), 1000);
        assert!(eta(10, 0.0, 4.0, 0).is_none());
    }
}
