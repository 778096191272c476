//! The `jobs` table and the small documented queries on it. Every function takes "now" in
//! epoch milliseconds, so tests can move time without sleeping.

use std::sync::Arc;
use std::time::Duration;

use bridge_store::{Conn, Op, Store};
use serde_json::Value;
use tokio::sync::Notify;

use crate::intake::Intake;
use crate::{Error, Result};

/// PostgreSQL channel that wakes workers when a job is enqueued.
pub const NOTIFY_CHANNEL: &str = "driftbridge_jobs";

/// Queue settings.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    /// How long a claim is valid before another worker may take the job. Workers extend it
    /// while a job runs, so it only has to outlast a crashed worker's silence.
    pub lease: Duration,
    /// Attempts before a job is dead.
    pub max_attempts: u32,
    /// Backoff after the first failure; doubles per attempt.
    pub backoff_base: Duration,
    /// Longest backoff.
    pub backoff_cap: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            max_attempts: 8,
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(600),
        }
    }
}

/// A job to enqueue.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    /// Stable snake_case name of the handler.
    pub name: String,
    /// Org it works for.
    pub org_id: Option<i64>,
    /// Arguments.
    pub args: Value,
    /// The event it came from.
    pub event_id: Option<i64>,
}

/// A claimed job: run it, then complete or fail it with the same attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// Row id.
    pub id: i64,
    /// Handler name.
    pub name: String,
    /// Org.
    pub org_id: Option<i64>,
    /// Arguments.
    pub args: Value,
    /// Source event.
    pub event_id: Option<i64>,
    /// This attempt's number (1-based): the fencing token.
    pub attempt: i64,
    /// Attempts allowed.
    pub max_attempts: i64,
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for `run_at`.
    Queued,
    /// Claimed under a lease.
    Running,
    /// Finished.
    Done,
    /// Gave up; kept with its last error.
    Dead,
    /// Cancelled by an operator or a disconnect.
    Cancelled,
}

impl JobState {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
        }
    }

    /// The state stored as `s`; a state this release does not know is an error, never a
    /// guess (a newer release may have written it).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "done" => Self::Done,
            "dead" => Self::Dead,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

/// A job as stored, for operators.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRow {
    /// Row id.
    pub id: i64,
    /// Handler name.
    pub name: String,
    /// Org.
    pub org_id: Option<i64>,
    /// Arguments.
    pub args: Value,
    /// Source event.
    pub event_id: Option<i64>,
    /// State.
    pub state: JobState,
    /// Attempts made.
    pub attempts: i64,
    /// Last error, if any.
    pub last_error: Option<String>,
    /// Next run (epoch ms).
    pub run_at: i64,
    /// Created (epoch ms).
    pub created_at: i64,
    /// Finished (epoch ms).
    pub finished_at: Option<i64>,
}

/// What a failure did to the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failed {
    /// It runs again at this time.
    RetryAt(i64),
    /// It is dead.
    Dead,
}

/// The queue: the store plus a wake-up signal for workers in this process.
#[derive(Clone, Debug)]
pub struct Queue {
    pub(crate) store: Store,
    pub(crate) config: QueueConfig,
    wake: Arc<Notify>,
    pub(crate) intake: Arc<Intake>,
}

type JobTuple = (i64, String, Option<i64>, String, Option<i64>, i64, i64);

fn job_from(t: JobTuple) -> Result<Job> {
    Ok(Job {
        id: t.0,
        name: t.1,
        org_id: t.2,
        args: parse_args(&t.3)?,
        event_id: t.4,
        attempt: t.5,
        max_attempts: t.6,
    })
}

fn parse_args(s: &str) -> Result<Value> {
    serde_json::from_str(s).map_err(|source| {
        Error::Store(bridge_store::Error::Corrupt {
            what: "job arguments",
            source,
        })
    })
}

impl Queue {
    /// A queue on the store.
    pub fn new(store: Store, config: QueueConfig) -> Self {
        Self {
            store,
            config,
            wake: Arc::new(Notify::new()),
            intake: Arc::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The settings.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// The signal workers in this process wait on.
    pub fn wake_signal(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Wakes a worker in this process (call after committing an enqueue).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Claims up to `max` runnable jobs (queued and due, or running with an expired lease)
    /// for `worker`, oldest first. Expired jobs that used their last attempt go dead instead.
    pub async fn claim(&self, worker: &str, max: usize, now_ms: i64) -> Result<Vec<Job>> {
        self.claim_skipping(worker, max, now_ms, &[]).await
    }

    /// [`Queue::claim`], leaving the queued jobs of the orgs in `skip` where they are (orgs
    /// whose Drift budget is spent for now: their backlog must not take every worker).
    pub async fn claim_skipping(
        &self,
        worker: &str,
        max: usize,
        now_ms: i64,
        skip: &[i64],
    ) -> Result<Vec<Job>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        // A claim that is lost is redone by the lease running out: it need not wait for the
        // disk (and must not, on SQLite, after a durable intake commit left the shared
        // connection at `synchronous = FULL`).
        let mut tx = self.store.begin_redoable().await?;
        // A job another transaction holds (an erasure rewriting it) is buried by a later
        // claim: a claim never waits on a row.
        let sql = format!(
            "UPDATE jobs SET state = 'dead', lease_until = NULL, updated_at = $1, \
             finished_at = $1, last_error = COALESCE(last_error || '; ', '') || \
             'lease expired on the last attempt (worker lost)' \
             WHERE id IN (SELECT id FROM jobs WHERE state = 'running' AND lease_until < $1 \
             AND attempts >= max_attempts{})",
            self.store.backend().skip_locked()
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .op("burying expired jobs")?;
        // Two claims, each one index range read in order and cut at its limit (a single
        // `... OR ...` made SQLite read every due job and sort them, on each claim): first
        // the jobs whose worker was lost, then queued ones.
        let mut rows = self
            .claim_where(
                &mut tx,
                "state = 'running' AND lease_until < $3",
                &[],
                worker,
                max,
                now_ms,
            )
            .await?;
        if rows.len() < max {
            let queued = if skip.is_empty() {
                "state = 'queued' AND run_at <= $3".to_owned()
            } else {
                // Placeholders only: the skipped org ids are bound, never spliced in.
                let marks: Vec<String> = (0..skip.len()).map(|i| format!("${}", i + 5)).collect();
                format!(
                    "state = 'queued' AND run_at <= $3 AND (org_id IS NULL OR org_id NOT IN ({}))",
                    marks.join(", ")
                )
            };
            rows.extend(
                self.claim_where(&mut tx, &queued, skip, worker, max - rows.len(), now_ms)
                    .await?,
            );
        }
        tx.commit().await.op("committing a claim")?;
        let mut jobs = rows.into_iter().map(job_from).collect::<Result<Vec<_>>>()?;
        jobs.sort_by_key(|j| j.id);
        Ok(jobs)
    }

    /// Claims up to `max` jobs matching `filter` (`$3` is now, `$5...` the `extra` ids),
    /// oldest first.
    async fn claim_where(
        &self,
        conn: &mut Conn,
        filter: &str,
        extra: &[i64],
        worker: &str,
        max: usize,
        now_ms: i64,
    ) -> Result<Vec<JobTuple>> {
        let lock = self.store.backend().skip_locked();
        let sql = format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = $1, \
             worker = $2, updated_at = $3 WHERE id IN (SELECT id FROM jobs WHERE {filter} \
             ORDER BY run_at, id LIMIT $4{lock}) \
             RETURNING id, name, org_id, args, event_id, attempts, max_attempts"
        );
        let lease_ms = self.config.lease.as_millis() as i64;
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(now_ms + lease_ms)
            .bind(worker)
            .bind(now_ms)
            .bind(max as i64);
        for id in extra {
            q = q.bind(*id);
        }
        Ok(q.fetch_all(&mut *conn).await.op("claiming jobs")?)
    }

    /// Marks the job done inside the caller's transaction, if this attempt still holds it.
    pub async fn complete(&self, conn: &mut Conn, job: &Job, now_ms: i64) -> Result<()> {
        let n = sqlx::query(
            "UPDATE jobs SET state = 'done', lease_until = NULL, finished_at = $3, \
             updated_at = $3 WHERE id = $1 AND attempts = $2 AND state = 'running'",
        )
        .bind(job.id)
        .bind(job.attempt)
        .bind(now_ms)
        .execute(conn)
        .await
        .op("completing a job")?
        .rows_affected();
        self.fenced(n, job)
    }

    fn fenced(&self, rows: u64, job: &Job) -> Result<()> {
        if rows == 1 {
            Ok(())
        } else {
            Err(Error::LeaseLost {
                id: job.id,
                attempt: job.attempt,
            })
        }
    }

    /// Extends this attempt's lease.
    pub async fn extend(&self, job: &Job, now_ms: i64) -> Result<()> {
        let n = sqlx::query(
            "UPDATE jobs SET lease_until = $3 WHERE id = $1 AND attempts = $2 AND state = 'running'",
        )
        .bind(job.id)
        .bind(job.attempt)
        .bind(now_ms + self.config.lease.as_millis() as i64)
        .execute(self.store.pool())
        .await
        .op("extending a lease")?
        .rows_affected();
        self.fenced(n, job)
    }

    /// Records a failed attempt: retry after backoff, or dead when permanent or out of
    /// attempts.
    pub async fn fail(
        &self,
        job: &Job,
        error: &str,
        permanent: bool,
        now_ms: i64,
    ) -> Result<Failed> {
        let outcome = if permanent || job.attempt >= job.max_attempts {
            Failed::Dead
        } else {
            Failed::RetryAt(now_ms + self.backoff(job).as_millis() as i64)
        };
        let (state, run_at, finished) = match outcome {
            Failed::Dead => ("dead", now_ms, Some(now_ms)),
            Failed::RetryAt(at) => ("queued", at, None),
        };
        let n = sqlx::query(
            "UPDATE jobs SET state = $3, run_at = $4, last_error = $5, lease_until = NULL, \
             finished_at = $6, updated_at = $7 WHERE id = $1 AND attempts = $2 AND state = 'running'",
        )
        .bind(job.id)
        .bind(job.attempt)
        .bind(state)
        .bind(run_at)
        .bind(truncate(error, 4000))
        .bind(finished)
        .bind(now_ms)
        .execute(self.store.pool())
        .await
        .op("failing a job")?
        .rows_affected();
        self.fenced(n, job)?;
        Ok(outcome)
    }

    /// Capped exponential backoff with jitter: a random point in the upper half of
    /// `base * 2^(attempt-1)`, at most the cap.
    pub fn backoff(&self, job: &Job) -> Duration {
        let c = &self.config;
        let exponent = (job.attempt.clamp(1, 21) - 1) as u32;
        drift_types::retry::backoff(c.backoff_base, c.backoff_cap, exponent)
    }

    /// Gives a claimed job back without counting the attempt (graceful shutdown).
    pub async fn release(&self, job: &Job, now_ms: i64) -> Result<()> {
        let n = sqlx::query(
            "UPDATE jobs SET state = 'queued', attempts = attempts - 1, lease_until = NULL, \
             run_at = $3, updated_at = $3 WHERE id = $1 AND attempts = $2 AND state = 'running'",
        )
        .bind(job.id)
        .bind(job.attempt)
        .bind(now_ms)
        .execute(self.store.pool())
        .await
        .op("releasing a job")?
        .rows_affected();
        self.fenced(n, job)
    }

    /// Puts a running job back to run at `run_at` without counting the attempt: the job was
    /// told to wait (a rate limit), which is not a failure. `why` is kept as its last error.
    pub async fn defer(&self, job: &Job, run_at: i64, why: &str, now_ms: i64) -> Result<()> {
        let n = sqlx::query(
            "UPDATE jobs SET state = 'queued', attempts = attempts - 1, lease_until = NULL, \
             run_at = $3, last_error = $4, updated_at = $5 \
             WHERE id = $1 AND attempts = $2 AND state = 'running'",
        )
        .bind(job.id)
        .bind(job.attempt)
        .bind(run_at)
        .bind(truncate(why, 4000))
        .bind(now_ms)
        .execute(self.store.pool())
        .await
        .op("deferring a job")?
        .rows_affected();
        self.fenced(n, job)
    }

    /// Puts a dead (or cancelled) job back in the queue with fresh attempts. Returns false
    /// when there is no such dead job.
    pub async fn retry(&self, id: i64, now_ms: i64) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $2, finished_at = NULL, \
             updated_at = $2 WHERE id = $1 AND state IN ('dead', 'cancelled')",
        )
        .bind(id)
        .bind(now_ms)
        .execute(self.store.pool())
        .await
        .op("retrying a job")?
        .rows_affected();
        if n == 1 {
            self.wake();
        }
        Ok(n == 1)
    }

    /// One job.
    pub async fn get(&self, id: i64) -> Result<Option<JobRow>> {
        Ok(self.rows(Filter::Id(id), 1).await?.into_iter().next())
    }

    /// Jobs in a state, newest first.
    pub async fn list(&self, state: JobState, limit: i64) -> Result<Vec<JobRow>> {
        self.rows(Filter::State(state), limit).await
    }

    async fn rows(&self, filter: Filter, limit: i64) -> Result<Vec<JobRow>> {
        type Row = (
            i64,
            String,
            Option<i64>,
            String,
            Option<i64>,
            String,
            i64,
            Option<String>,
            i64,
            i64,
            Option<i64>,
        );
        const COLUMNS: &str = "SELECT id, name, org_id, args, event_id, state, attempts, \
             last_error, run_at, created_at, finished_at FROM jobs";
        let q = match filter {
            Filter::Id(id) => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{COLUMNS} WHERE id = $1 ORDER BY id DESC LIMIT $2"
            )))
            .bind(id),
            Filter::State(s) => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{COLUMNS} WHERE state = $1 ORDER BY id DESC LIMIT $2"
            )))
            .bind(s.as_str()),
        };
        let rows: Vec<Row> = q
            .bind(limit)
            .fetch_all(self.store.pool())
            .await
            .op("listing jobs")?;
        rows.into_iter()
            .map(|r| {
                Ok(JobRow {
                    id: r.0,
                    name: r.1,
                    org_id: r.2,
                    args: parse_args(&r.3)?,
                    event_id: r.4,
                    state: JobState::parse(&r.5).ok_or_else(|| Error::UnknownState {
                        id: r.0,
                        state: r.5.clone(),
                    })?,
                    attempts: r.6,
                    last_error: r.7,
                    run_at: r.8,
                    created_at: r.9,
                    finished_at: r.10,
                })
            })
            .collect()
    }

    /// Jobs per state.
    pub async fn counts(&self) -> Result<Vec<(String, i64)>> {
        sqlx::query_as("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")
            .fetch_all(self.store.pool())
            .await
            .op("counting jobs")
            .map_err(Into::into)
    }

    /// Jobs that are queued or running.
    pub async fn pending(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')")
            .fetch_one(self.store.pool())
            .await
            .op("counting pending jobs")
            .map_err(Into::into)
    }
}

enum Filter {
    Id(i64),
    State(JobState),
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
