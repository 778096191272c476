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

/// A sink's failure, classified once for the queue, the metrics and the records: a throttle
/// waits what the CRM asked without spending an attempt, a transient failure retries (after
/// the CRM's wait when it gave one), a refusal is final.
#[derive(Debug)]
pub struct SinkFailure {
    /// `throttled`, `retried` or `failed`.
    pub outcome: &'static str,
    /// The CRM refused for good.
    pub rejected: bool,
    wait: Option<std::time::Duration>,
    /// The sink's error (status, vendor code and cause kept) under `context`.
    pub error: anyhow::Error,
}

impl SinkFailure {
    /// Classifies `e`, which happened while doing `context`.
    pub fn new(e: bridge_sinks::sink::SinkError, context: String) -> Self {
        use bridge_sinks::sink::SinkError as S;
        let (outcome, wait, rejected) = match &e {
            S::Throttled { after, .. } => ("throttled", Some(*after), false),
            S::Retry { after, .. } => ("retried", *after, false),
            S::Rejected { .. } => ("failed", None, true),
        };
        SinkFailure {
            outcome,
            rejected,
            wait,
            error: anyhow::Error::new(e).context(context),
        }
    }

    /// The whole chain, for a record's `last_error`.
    pub fn message(&self) -> String {
        format!("{:#}", self.error)
    }

    /// What the queue does with the job.
    pub fn into_job_error(self) -> JobError {
        match (self.rejected, self.wait) {
            (true, _) => JobError::Permanent(self.error),
            (false, Some(after)) => JobError::Defer {
                after,
                reason: self.error,
            },
            (false, None) => JobError::Retry(self.error),
        }
    }
}
