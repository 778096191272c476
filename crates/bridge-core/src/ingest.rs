//! Durable intake: an event and the jobs it makes are committed in one transaction before
//! the caller is told it was accepted. Events arriving together share one transaction
//! ([`crate::group_commit`]), so one `fsync` acknowledges many webhooks; each caller still
//! waits for the commit that holds its own event.

use std::sync::Arc;

use bridge_queue::{NewJob, Queue};
use bridge_store::{Op, events};
use serde_json::Value;

use crate::group_commit::{CommitError, Committer, GroupWrite};
use crate::metrics::Metrics;

/// One verified event, ready to store.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The org from the envelope.
    pub org_id: Option<i64>,
    /// The `type` as delivered.
    pub event_type: String,
    /// The envelope to store (its `token` already removed).
    pub payload: Value,
    /// De-duplication key.
    pub dedup_key: String,
    /// Jobs to enqueue with it (their `event_id` is filled in).
    pub jobs: Vec<NewJob>,
    /// Why its data did not parse, for a known type whose data had another shape: it is
    /// stored with this and no job, listed by `driftbridge events malformed`.
    pub parse_error: Option<String>,
    /// The conversation its data names, if any.
    pub conversation_id: Option<i64>,
}

/// What intake did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Stored now, with this id.
    New(i64),
    /// Already stored earlier; nothing new was written.
    Duplicate,
}

/// Intake failed; nothing of this event was stored.
pub type IngestError = CommitError;

/// Handle to the committer task.
#[derive(Debug, Clone)]
pub struct Ingestor {
    committer: Committer<Webhooks>,
    queue: Queue,
}

impl Ingestor {
    /// Starts the committer on `queue`'s store.
    pub fn spawn(queue: Queue, metrics: Arc<Metrics>) -> Self {
        Self {
            committer: Committer::spawn(Webhooks(queue.clone()), metrics),
            queue,
        }
    }

    /// Stores the event and its jobs durably, or says why not.
    pub async fn ingest(&self, event: Incoming) -> Result<Accepted, IngestError> {
        let _waiting = self.queue.intake_pending();
        self.committer.submit(event).await
    }
}

/// Webhook events and their jobs, stored by the group committer.
struct Webhooks(Queue);

impl GroupWrite for Webhooks {
    type Item = Incoming;
    type Out = Accepted;
    const METRIC: (&'static str, &'static str) = (
        "driftbridge_ingest_commit_seconds",
        "Time to commit one intake batch.",
    );

    async fn commit(&self, batch: &[Incoming]) -> Result<Vec<Accepted>, bridge_queue::Error> {
        commit_batch(&self.0, batch).await
    }

    fn committed(&self, outs: &[Accepted]) {
        if outs.iter().any(|r| matches!(r, Accepted::New(_))) {
            self.0.wake();
        }
    }
}

async fn commit_batch(
    queue: &Queue,
    batch: &[Incoming],
) -> Result<Vec<Accepted>, bridge_queue::Error> {
    let now = drift_types::now_ms();
    let payloads: Vec<String> = batch.iter().map(|ev| ev.payload.to_string()).collect();
    let rows: Vec<events::NewEvent<'_>> = batch
        .iter()
        .zip(&payloads)
        .map(|(ev, payload)| events::NewEvent {
            dedup_key: &ev.dedup_key,
            org_id: ev.org_id,
            event_type: &ev.event_type,
            payload,
            parse_error: ev.parse_error.as_deref(),
            conversation_id: ev.conversation_id,
        })
        .collect();
    let mut tx = queue.store().begin().await?;
    let ids = events::insert_many(&mut tx, &rows, now).await?;
    let mut jobs = Vec::new();
    let mut out = Vec::with_capacity(batch.len());
    for (ev, id) in batch.iter().zip(ids) {
        match id {
            Some(id) => {
                jobs.extend(ev.jobs.iter().map(|job| NewJob {
                    event_id: Some(id),
                    ..job.clone()
                }));
                out.push(Accepted::New(id));
            }
            None => out.push(Accepted::Duplicate),
        }
    }
    queue.enqueue_many(&mut tx, &jobs, now).await?;
    tx.commit().await.op("committing intake")?;
    Ok(out)
}
