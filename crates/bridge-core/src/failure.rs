//! How a failed Drift call ends a job. The client's error answers the question
//! ([`drift_client::Error::is_permanent`]); this only wraps the answer for the queue.

use bridge_queue::JobError;
use drift_client::FetchError;

/// A Drift failure while fetching `what`: permanent when Drift refused the request itself
/// (no later attempt can succeed), else retried by the queue with backoff.
pub fn drift_error(e: drift_client::Error, what: &str) -> JobError {
    let permanent = e.is_permanent();
    let e = anyhow::Error::new(e).context(format!("while fetching {what}"));
    if permanent {
        JobError::Permanent(e)
    } else {
        JobError::Retry(e)
    }
}

/// A failed conversation fetch, classified the same way.
pub fn fetch_error(e: FetchError) -> JobError {
    drift_error(e.source, e.part.what())
}
