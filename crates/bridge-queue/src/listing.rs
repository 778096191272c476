//! Jobs as operators see them: listed with filters (state, kind, org, age, error text) as
//! compact rows without their arguments, retried or cancelled one at a time or every match
//! at once, and counted per kind with the age of the oldest waiting one.

use bridge_store::Op;
use bridge_store::filter::Where;

use crate::queue::{JobState, Queue};
use crate::{Error, Result};

/// What to list; `None` is any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// State.
    pub state: Option<JobState>,
    /// Kind (the handler's name: `sync_conversation`, `deliver`, ...).
    pub name: Option<String>,
    /// Org.
    pub org: Option<i64>,
    /// Created at or after (epoch ms).
    pub since: Option<i64>,
    /// The last error contains this (any case).
    pub error: Option<String>,
    /// Made by this stored event.
    pub event: Option<i64>,
    /// Only ids below this one (the next page).
    pub before_id: Option<i64>,
}

impl JobFilter {
    fn where_clause(&self) -> Where {
        let mut w = Where::new();
        w.text("state", self.state.map(JobState::as_str))
            .text("name", self.name.as_deref())
            .int("org_id", "=", self.org)
            .int("created_at", ">=", self.since)
            .contains("last_error", self.error.as_deref())
            .int("event_id", "=", self.event)
            .int("id", "<", self.before_id);
        w
    }
}

/// A job in a listing: everything but its arguments.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobSummary {
    /// Row id.
    pub id: i64,
    /// Kind.
    pub name: String,
    /// Org.
    pub org_id: Option<i64>,
    /// The event that made it.
    pub event_id: Option<i64>,
    /// `queued`, `running`, `done`, `dead` or `cancelled`.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// The last error.
    pub last_error: Option<String>,
    /// Next run (epoch ms).
    pub run_at: i64,
    /// Created (epoch ms).
    pub created_at: i64,
    /// Finished (epoch ms).
    pub finished_at: Option<i64>,
}

/// Waiting work of one kind.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KindDepth {
    /// Kind.
    pub name: String,
    /// Queued (due or not).
    pub queued: i64,
    /// Running.
    pub running: i64,
    /// Dead.
    pub dead: i64,
    /// When the oldest queued or running one was created (epoch ms).
    pub oldest_created_at: Option<i64>,
}

impl Queue {
    /// Jobs matching `f`, newest first, at most `limit`.
    pub async fn search(&self, f: &JobFilter, limit: i64) -> Result<Vec<JobSummary>> {
        let w = f.where_clause();
        let sql = format!(
            "SELECT id, name, org_id, event_id, state, attempts, last_error, run_at, created_at, \
             finished_at FROM jobs{} ORDER BY id DESC LIMIT ${}",
            w.sql(),
            w.after()
        );
        type Row = (
            i64,
            String,
            Option<i64>,
            Option<i64>,
            String,
            i64,
            Option<String>,
            i64,
            i64,
            Option<i64>,
        );
        let rows: Vec<Row> = w
            .bind_as(sqlx::query_as(sqlx::AssertSqlSafe(sql)))
            .bind(limit)
            .fetch_all(self.store.pool())
            .await
            .op("listing jobs")?;
        Ok(rows
            .into_iter()
            .map(|r| JobSummary {
                id: r.0,
                name: r.1,
                org_id: r.2,
                event_id: r.3,
                state: r.4,
                attempts: r.5,
                last_error: r.6,
                run_at: r.7,
                created_at: r.8,
                finished_at: r.9,
            })
            .collect())
    }

    /// Queues again, with fresh attempts, every dead or cancelled job matching `f` (whatever
    /// state it names); answers how many.
    pub async fn retry_matching(&self, f: &JobFilter, now_ms: i64) -> Result<u64> {
        let f = JobFilter {
            state: None,
            ..f.clone()
        };
        let mut w = f.where_clause();
        w.raw("state IN ('dead', 'cancelled')");
        let n = w.after();
        let sql = format!(
            "UPDATE jobs SET state = 'queued', attempts = 0, run_at = ${n}, finished_at = NULL, \
             updated_at = ${n} WHERE id IN (SELECT id FROM jobs{}{})",
            w.sql(),
            self.store.backend().locked_in_id_order()
        );
        let done = w
            .bind(sqlx::query(sqlx::AssertSqlSafe(sql)))
            .bind(now_ms)
            .execute(self.store.pool())
            .await
            .op("retrying matching jobs")?
            .rows_affected();
        if done > 0 {
            self.wake();
        }
        Ok(done)
    }

    /// Cancels a queued job (a running one finishes its attempt; a finished one stays as it
    /// is). Answers false when the job is not queued.
    pub async fn cancel(&self, id: i64, now_ms: i64) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE jobs SET state = 'cancelled', finished_at = $2, updated_at = $2, \
             last_error = COALESCE(last_error || '; ', '') || 'cancelled by an operator' \
             WHERE id = $1 AND state = 'queued'",
        )
        .bind(id)
        .bind(now_ms)
        .execute(self.store.pool())
        .await
        .op("cancelling a job")?
        .rows_affected();
        Ok(n == 1)
    }

    /// Per kind: queued, running and dead jobs and the oldest waiting one's creation time.
    pub async fn depth_by_kind(&self) -> Result<Vec<KindDepth>> {
        let rows: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT name, state, COUNT(*), MIN(created_at) FROM jobs \
             WHERE state IN ('queued', 'running', 'dead') GROUP BY name, state ORDER BY name",
        )
        .fetch_all(self.store.pool())
        .await
        .op("counting jobs by kind")?;
        let mut out: Vec<KindDepth> = Vec::new();
        for (name, state, n, oldest) in rows {
            if out.last().is_none_or(|k| k.name != name) {
                out.push(KindDepth {
                    name: name.clone(),
                    queued: 0,
                    running: 0,
                    dead: 0,
                    oldest_created_at: None,
                });
            }
            let k = out.last_mut().expect("pushed above");
            match state.as_str() {
                "queued" => k.queued = n,
                "running" => k.running = n,
                "dead" => k.dead = n,
                other => {
                    return Err(Error::UnknownState {
                        id: 0,
                        state: other.to_owned(),
                    });
                }
            }
            if state != "dead" {
                k.oldest_created_at = match (k.oldest_created_at, oldest) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        Ok(out)
    }
}
