//! Durable intake: an event and the jobs it makes are committed in one transaction before
//! the caller is told it was accepted. Events arriving together share one transaction (group
//! commit), so one `fsync` acknowledges many webhooks; each caller still waits for the commit
//! that holds its own event.

use std::sync::Arc;
use std::time::Duration;

use bridge_queue::{NewJob, Queue};
use bridge_store::{Op, events};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// Events committed together at most: bounds a transaction's size and the latency the first
/// event of a batch waits for the last.
const MAX_BATCH: usize = 512;
/// Queued intake requests before callers wait: back-pressure instead of unbounded memory.
const CHANNEL: usize = 8192;

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
#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    /// The committer task is gone (the process is shutting down).
    #[error("the event could not be stored: intake is stopped")]
    Stopped,
    /// The transaction that held this event (and those committed with it) failed.
    #[error("the event could not be stored")]
    Commit(#[source] Arc<bridge_queue::Error>),
}

type Reply = oneshot::Sender<Result<Accepted, IngestError>>;

/// Handle to the committer task.
#[derive(Debug, Clone)]
pub struct Ingestor {
    tx: mpsc::Sender<(Incoming, Reply)>,
    queue: Queue,
}

impl Ingestor {
    /// Starts the committer on `queue`'s store.
    pub fn spawn(queue: Queue, metrics: Arc<Metrics>) -> Self {
        let (tx, rx) = mpsc::channel(CHANNEL);
        tokio::spawn(committer(queue.clone(), metrics, rx));
        Self { tx, queue }
    }

    /// Stores the event and its jobs durably, or says why not.
    pub async fn ingest(&self, event: Incoming) -> Result<Accepted, IngestError> {
        let _waiting = self.queue.intake_pending();
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((event, reply))
            .await
            .map_err(|_| IngestError::Stopped)?;
        rx.await.unwrap_or(Err(IngestError::Stopped))
    }
}

async fn committer(queue: Queue, metrics: Arc<Metrics>, mut rx: mpsc::Receiver<(Incoming, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(x) => batch.push(x),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        match commit(&queue, &batch).await {
            Ok(results) => {
                let any_jobs = results.iter().any(|r| matches!(r, Accepted::New(_)));
                for ((_, reply), r) in batch.drain(..).zip(results) {
                    let _ = reply.send(Ok(r));
                }
                if any_jobs {
                    queue.wake();
                }
            }
            Err(e) => {
                tracing::error!(error = %format!("{:#}", anyhow::Error::from(e.clone())),
                    events = batch.len(), "storing webhook events failed");
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
                // A failing database should not be hammered in a tight loop.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        metrics.observe(
            "driftbridge_ingest_commit_seconds",
            "Time to commit one intake batch.",
            String::new(),
            started.elapsed(),
        );
    }
}

async fn commit(queue: &Queue, batch: &[(Incoming, Reply)]) -> Result<Vec<Accepted>, IngestError> {
    commit_batch(queue, batch)
        .await
        .map_err(|e| IngestError::Commit(Arc::new(e)))
}

async fn commit_batch(
    queue: &Queue,
    batch: &[(Incoming, Reply)],
) -> Result<Vec<Accepted>, bridge_queue::Error> {
    let now = drift_types::now_ms();
    let payloads: Vec<String> = batch.iter().map(|(ev, _)| ev.payload.to_string()).collect();
    let rows: Vec<events::NewEvent<'_>> = batch
        .iter()
        .zip(&payloads)
        .map(|((ev, _), payload)| events::NewEvent {
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
    for ((ev, _), id) in batch.iter().zip(ids) {
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
