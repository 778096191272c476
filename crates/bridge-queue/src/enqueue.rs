//! Putting jobs in the queue, inside the caller's transaction: one at a time, or a batch's
//! worth in multi-row statements (intake's group commit); and the count of webhooks still
//! waiting to be stored, which the workers let go first.

use bridge_store::{Backend, Conn, Op};

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::Result;
use crate::intake::IntakeGuard;
use crate::queue::{NOTIFY_CHANNEL, NewJob, Queue};

impl Queue {
    /// Enqueues a job inside the caller's transaction; on PostgreSQL also notifies listening
    /// workers, which PostgreSQL delivers at commit.
    pub async fn enqueue(&self, conn: &mut Conn, job: &NewJob, now_ms: i64) -> Result<i64> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO jobs (name, org_id, args, event_id, state, attempts, max_attempts, \
             run_at, created_at, updated_at) VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $6, $6) \
             RETURNING id",
        )
        .bind(&job.name)
        .bind(job.org_id)
        .bind(job.args.to_string())
        .bind(job.event_id)
        .bind(i64::from(self.config.max_attempts))
        .bind(now_ms)
        .fetch_one(&mut *conn)
        .await
        .op("enqueueing a job")?;
        self.notify_workers(conn).await?;
        Ok(id)
    }

    /// Enqueues jobs inside the caller's transaction with one multi-row statement per 500
    /// (intake's group commit), and on PostgreSQL one notification for them all.
    pub async fn enqueue_many(&self, conn: &mut Conn, jobs: &[NewJob], now_ms: i64) -> Result<()> {
        // 10 parameters a row: 5,000 a statement, inside both backends' bounds.
        const ROWS: usize = 500;
        for chunk in jobs.chunks(ROWS) {
            let mut sql = String::from(
                "INSERT INTO jobs (name, org_id, args, event_id, state, attempts, max_attempts, \
                 run_at, created_at, updated_at) VALUES ",
            );
            sql.push_str(&bridge_store::warehouse::placeholders(chunk.len(), 10, 1));
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for job in chunk {
                q = q
                    .bind(&job.name)
                    .bind(job.org_id)
                    .bind(job.args.to_string())
                    .bind(job.event_id)
                    .bind("queued")
                    .bind(0_i64)
                    .bind(i64::from(self.config.max_attempts))
                    .bind(now_ms)
                    .bind(now_ms)
                    .bind(now_ms);
            }
            q.execute(&mut *conn).await.op("enqueueing jobs")?;
        }
        if !jobs.is_empty() {
            self.notify_workers(conn).await?;
        }
        Ok(())
    }

    /// On PostgreSQL, wakes the workers listening in every process (delivered at commit).
    async fn notify_workers(&self, conn: &mut Conn) -> Result<()> {
        if self.store.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(NOTIFY_CHANNEL)
                .execute(&mut *conn)
                .await
                .op("notifying workers")?;
        }
        Ok(())
    }

    /// Marks a webhook as waiting to be stored (intake calls it; the guard ends it).
    pub fn intake_pending(&self) -> IntakeGuard {
        self.intake.pending.fetch_add(1, Ordering::AcqRel);
        IntakeGuard(self.intake.clone())
    }

    /// Waits, at most `limit`, until no webhook is waiting to be stored in this process.
    pub async fn intake_idle(&self, limit: Duration) {
        let idle = self.intake.idle.notified();
        if self.intake.pending.load(Ordering::Acquire) == 0 {
            return;
        }
        let _ = tokio::time::timeout(limit, idle).await;
    }
}
