//! The worker pool: claims jobs in batches up to its free slots, runs each under a lease that
//! a heartbeat extends, and records the outcome. The one place that logs a job's failure.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bridge_store::{Backend, Op, Tx};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::queue::NOTIFY_CHANNEL;
use crate::{Error, Failed, Job, Queue};

/// Why a job attempt did not complete.
#[derive(Debug)]
pub enum JobError {
    /// Try again after backoff.
    Retry(anyhow::Error),
    /// Do not retry: the job is dead at once.
    Permanent(anyhow::Error),
    /// Another attempt holds the job; this one's work was rolled back.
    LeaseLost,
    /// Wait `after` and run again, without counting this attempt (a rate limit or a busy
    /// resource asked for the wait; that is not a failure).
    Defer {
        /// How long to wait.
        after: Duration,
        /// Why.
        reason: anyhow::Error,
    },
}

impl From<anyhow::Error> for JobError {
    fn from(e: anyhow::Error) -> Self {
        Self::Retry(e)
    }
}

impl From<Error> for JobError {
    fn from(e: Error) -> Self {
        match e {
            Error::LeaseLost { .. } => Self::LeaseLost,
            other => Self::Retry(other.into()),
        }
    }
}

impl From<bridge_store::Error> for JobError {
    fn from(e: bridge_store::Error) -> Self {
        Self::Retry(e.into())
    }
}

/// A running job and the way to finish it.
#[derive(Debug)]
pub struct JobCtx {
    /// The claimed job.
    pub job: Job,
    queue: Queue,
    finished: bool,
}

impl JobCtx {
    /// Starts the job's transaction (redoable: a lost commit means the job runs again),
    /// after letting webhooks that are being stored go first, for a moment.
    pub async fn begin(&self) -> Result<Tx, JobError> {
        self.queue.intake_idle(crate::intake::INTAKE_FIRST).await;
        Ok(self.queue.store().begin_redoable().await?)
    }

    /// Completes the job inside `tx` and commits: the job's rows and its completion land
    /// together, or, when the lease was lost, neither does.
    pub async fn finish(&mut self, mut tx: Tx) -> Result<(), JobError> {
        self.queue
            .complete(&mut tx, &self.job, drift_types::now_ms())
            .await?;
        tx.commit()
            .await
            .map_err(|e| JobError::Retry(anyhow::Error::new(e).context("while committing")))?;
        self.finished = true;
        Ok(())
    }

    /// The queue (to enqueue follow-up jobs in the same transaction).
    pub fn queue(&self) -> &Queue {
        &self.queue
    }
}

/// Runs jobs by name. A handler either calls [`JobCtx::finish`] with the transaction holding
/// its writes, or returns `Ok` having written nothing (the worker completes the job then).
pub trait Handler: Send + Sync + 'static {
    /// Runs one attempt.
    fn handle(&self, ctx: &mut JobCtx) -> impl Future<Output = Result<(), JobError>> + Send;

    /// Orgs whose queued jobs the next claim leaves alone for now (their upstream budget
    /// is spent), so one org's backlog cannot take every worker.
    fn paused_orgs(&self) -> Vec<i64> {
        Vec::new()
    }
}

/// Counters of what the workers did.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Jobs completed.
    pub completed: AtomicU64,
    /// Attempts that failed and will retry.
    pub retried: AtomicU64,
    /// Jobs that went dead.
    pub dead: AtomicU64,
    /// Attempts that lost their lease.
    pub lease_lost: AtomicU64,
    /// Attempts put back to wait, not counted.
    pub deferred: AtomicU64,
    /// Jobs released at shutdown.
    pub released: AtomicU64,
}

/// Called after each attempt with the job, its outcome label and its run time.
pub type OnFinish = Arc<dyn Fn(&Job, &'static str, Duration) + Send + Sync>;

/// Worker pool settings.
#[derive(Clone)]
pub struct WorkerConfig {
    /// Jobs run at once.
    pub concurrency: usize,
    /// Name recorded on claimed jobs.
    pub worker_id: String,
    /// Fallback poll when nothing wakes the pool (other processes on SQLite).
    pub poll_interval: Duration,
    /// How long running jobs may finish after shutdown before they are released.
    pub grace: Duration,
    /// Observer for metrics.
    pub on_finish: Option<OnFinish>,
    /// Shared counters.
    pub stats: Arc<WorkerStats>,
}

impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("concurrency", &self.concurrency)
            .field("worker_id", &self.worker_id)
            .field("poll_interval", &self.poll_interval)
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            worker_id: format!("worker-{}", std::process::id()),
            poll_interval: Duration::from_millis(500),
            grace: Duration::from_secs(10),
            on_finish: None,
            stats: Arc::default(),
        }
    }
}

/// Runs the pool until `shutdown` turns true, then drains as described in the crate docs.
pub async fn run_workers<H: Handler>(
    queue: Queue,
    handler: Arc<H>,
    config: WorkerConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let wake = queue.wake_signal();
    let listener = (queue.store().backend() == Backend::Postgres).then(|| {
        let url = queue.store().url().to_owned();
        let wake = wake.clone();
        tokio::spawn(async move { listen(&url, &wake).await })
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let first = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        // Acknowledging webhooks comes first; the jobs are already safe in the queue.
        queue.intake_idle(crate::intake::INTAKE_YIELD).await;
        let mut permits = vec![first];
        while let Ok(p) = slots.clone().try_acquire_owned() {
            permits.push(p);
        }
        let jobs = match queue
            .claim_skipping(
                &config.worker_id,
                permits.len(),
                drift_types::now_ms(),
                &handler.paused_orgs(),
            )
            .await
        {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "claiming jobs failed; will retry");
                Vec::new()
            }
        };
        while tasks.try_join_next().is_some() {}
        if jobs.is_empty() {
            drop(permits);
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(config.poll_interval) => {}
                _ = shutdown.changed() => break,
            }
            continue;
        }
        for job in jobs {
            let Some(permit) = permits.pop() else { break };
            let (queue, handler, config, stop) = (
                queue.clone(),
                handler.clone(),
                config.clone(),
                stop_rx.clone(),
            );
            tasks.spawn(async move {
                // Every line a job logs (its handler's and the worker's about it) carries the
                // job's id, kind, org and attempt.
                let span = tracing::info_span!(
                    "job",
                    job.id = job.id,
                    job.kind = %job.name,
                    org.id = job.org_id,
                    job.attempt = job.attempt
                );
                run_one(queue, &*handler, job, &config, stop)
                    .instrument(span)
                    .await;
                drop(permit);
            });
        }
    }
    let drained = tokio::time::timeout(config.grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        let _ = stop_tx.send(true);
        while tasks.join_next().await.is_some() {}
    }
    if let Some(l) = listener {
        l.abort();
    }
}

async fn listen(url: &str, wake: &tokio::sync::Notify) {
    loop {
        match sqlx::postgres::PgListener::connect(url).await {
            Ok(mut l) => {
                if let Err(e) = l.listen(NOTIFY_CHANNEL).await {
                    tracing::warn!(error = %e, "LISTEN failed");
                } else {
                    while l.recv().await.is_ok() {
                        wake.notify_one();
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "job listener cannot connect; polling"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn run_one<H: Handler>(
    queue: Queue,
    handler: &H,
    job: Job,
    config: &WorkerConfig,
    mut stop: watch::Receiver<bool>,
) {
    let started = Instant::now();
    let mut ctx = JobCtx {
        job: job.clone(),
        queue: queue.clone(),
        finished: false,
    };
    let result = {
        let fut = handler.handle(&mut ctx);
        tokio::pin!(fut);
        // The heartbeat is polled *beside* the handler, never instead of it: its UPDATE can
        // wait on the job row that the handler's own transaction holds (a completion not yet
        // committed; on SQLite, the one connection), and the handler must keep running to
        // commit and release it. Awaiting the beat in the loop body starved the handler and
        // deadlocked the two.
        let heartbeat = async {
            let mut beat = tokio::time::interval(queue.config().lease / 3);
            beat.tick().await;
            loop {
                beat.tick().await;
                if let Err(Error::LeaseLost { .. }) =
                    queue.extend(&job, drift_types::now_ms()).await
                {
                    return;
                }
            }
        };
        tokio::pin!(heartbeat);
        tokio::select! {
            biased;
            r = &mut fut => Some(r),
            () = &mut heartbeat => Some(Err(JobError::LeaseLost)),
            _ = stop.changed() => None,
        }
    };
    let stats = &config.stats;
    let label = match result {
        None => match queue.release(&job, drift_types::now_ms()).await {
            Ok(()) => {
                stats.released.fetch_add(1, Ordering::Relaxed);
                "released"
            }
            Err(_) => "lease_lost",
        },
        Some(Ok(())) if ctx.finished => {
            stats.completed.fetch_add(1, Ordering::Relaxed);
            "completed"
        }
        Some(Ok(())) => complete_empty(&queue, &job, stats).await,
        Some(Err(JobError::LeaseLost)) => {
            stats.lease_lost.fetch_add(1, Ordering::Relaxed);
            tracing::info!("lease lost to a newer attempt; this attempt's writes were discarded");
            "lease_lost"
        }
        Some(Err(JobError::Retry(e))) => record_failure(&queue, &job, &e, false, stats).await,
        Some(Err(JobError::Defer { after, reason })) => {
            let why = format!("{reason:#}");
            let at = drift_types::now_ms() + after.as_millis() as i64;
            match queue.defer(&job, at, &why, drift_types::now_ms()).await {
                Ok(()) => {
                    stats.deferred.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(reason = %why, wait_ms = after.as_millis() as u64, "job deferred");
                    "deferred"
                }
                Err(Error::LeaseLost { .. }) => {
                    stats.lease_lost.fetch_add(1, Ordering::Relaxed);
                    "lease_lost"
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "could not defer a job");
                    "retried"
                }
            }
        }
        Some(Err(JobError::Permanent(e))) => record_failure(&queue, &job, &e, true, stats).await,
    };
    if let Some(f) = &config.on_finish {
        f(&job, label, started.elapsed());
    }
}

async fn complete_empty(queue: &Queue, job: &Job, stats: &WorkerStats) -> &'static str {
    let done = async {
        let mut tx = queue.store().begin_redoable().await?;
        queue.complete(&mut tx, job, drift_types::now_ms()).await?;
        tx.commit().await.op("committing a completion")?;
        Ok::<_, Error>(())
    };
    match done.await {
        Ok(()) => {
            stats.completed.fetch_add(1, Ordering::Relaxed);
            "completed"
        }
        Err(Error::LeaseLost { .. }) => {
            stats.lease_lost.fetch_add(1, Ordering::Relaxed);
            "lease_lost"
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "could not record completion; the job will run again");
            "retried"
        }
    }
}

async fn record_failure(
    queue: &Queue,
    job: &Job,
    e: &anyhow::Error,
    permanent: bool,
    stats: &WorkerStats,
) -> &'static str {
    let msg = format!("{e:#}");
    match queue
        .fail(job, &msg, permanent, drift_types::now_ms())
        .await
    {
        Ok(Failed::Dead) => {
            stats.dead.fetch_add(1, Ordering::Relaxed);
            tracing::error!(job.id = job.id, job.name = %job.name, job.attempt = job.attempt,
                error = %msg, "job is dead");
            "dead"
        }
        Ok(Failed::RetryAt(at)) => {
            stats.retried.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(job.id = job.id, job.name = %job.name, job.attempt = job.attempt,
                error = %msg, retry_at = at, "job failed; will retry");
            "retried"
        }
        Err(Error::LeaseLost { .. }) => {
            stats.lease_lost.fetch_add(1, Ordering::Relaxed);
            "lease_lost"
        }
        Err(err) => {
            tracing::warn!(error = %format!("{err:#}"), job_error = %msg, "could not record failure");
            "retried"
        }
    }
}
