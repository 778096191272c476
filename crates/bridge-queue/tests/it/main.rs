//! The queue on both backends, through one parameterised harness.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bridge_queue::{
    Failed, Handler, JobCtx, JobError, JobState, NewJob, Queue, QueueConfig, WorkerConfig,
    run_workers,
};
use bridge_store::testing::{BACKENDS, TestDb, fresh};
use bridge_store::{Backend, Store};
use common::{enqueue, job, now_ms};
use serde_json::json;

#[path = "../common/mod.rs"]
mod common;

async fn queues(config: QueueConfig) -> Vec<(Backend, Queue, TestDb)> {
    let mut out = Vec::new();
    for b in BACKENDS {
        if let Some(db) = fresh(*b).await {
            let store = Store::connect(&db.url).await.expect("connect");
            out.push((*b, Queue::new(store, config.clone()), db));
        }
    }
    out
}

fn short_lease() -> QueueConfig {
    QueueConfig {
        lease: Duration::from_secs(10),
        max_attempts: 3,
        backoff_base: Duration::from_secs(1),
        backoff_cap: Duration::from_secs(4),
    }
}

#[tokio::test]
async fn a_stale_worker_cannot_complete_a_job_taken_over_after_its_lease() {
    for (backend, q, _db) in queues(short_lease()).await {
        let id = enqueue(&q, &job("x", 1), 1_000).await;
        let a = q.claim("a", 10, 1_000).await.unwrap();
        assert_eq!(a.len(), 1, "{backend:?}");
        assert_eq!(a[0].attempt, 1);
        // Within the lease nobody else gets it.
        assert!(
            q.claim("b", 10, 5_000).await.unwrap().is_empty(),
            "{backend:?}"
        );
        // After the lease, worker b takes it over with attempt 2.
        let b = q.claim("b", 10, 11_001).await.unwrap();
        assert_eq!((b[0].id, b[0].attempt), (id, 2), "{backend:?}");
        // a's late completion is rejected and its transaction's writes roll back.
        let mut tx = q.store().begin().await.unwrap();
        let late = q.complete(&mut tx, &a[0], 12_000).await;
        assert!(
            matches!(late, Err(bridge_queue::Error::LeaseLost { .. })),
            "{backend:?}"
        );
        drop(tx);
        let mut tx = q.store().begin().await.unwrap();
        q.complete(&mut tx, &b[0], 12_000).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(q.get(id).await.unwrap().unwrap().state, JobState::Done);
    }
}

#[tokio::test]
async fn failures_back_off_then_go_dead_with_the_last_error_and_retry_revives_them() {
    for (backend, q, _db) in queues(short_lease()).await {
        let id = enqueue(&q, &job("x", 1), 0).await;
        let mut now = 0;
        for attempt in 1..=3 {
            let j = q.claim("w", 1, now).await.unwrap();
            assert_eq!(j.len(), 1, "{backend:?} attempt {attempt}");
            let outcome = q
                .fail(&j[0], &format!("boom {attempt}"), false, now)
                .await
                .unwrap();
            match outcome {
                Failed::RetryAt(at) => {
                    let max = 1000 * (1 << (attempt - 1)).min(4);
                    assert!(
                        at - now >= max / 2 && at - now <= max,
                        "{backend:?} {at} {now}"
                    );
                    assert!(q.claim("w", 1, at - 1).await.unwrap().is_empty());
                    now = at;
                }
                Failed::Dead => assert_eq!(attempt, 3, "{backend:?}"),
            }
        }
        let dead = q.list(JobState::Dead, 10).await.unwrap();
        assert_eq!(dead.len(), 1, "{backend:?}");
        assert_eq!(dead[0].last_error.as_deref(), Some("boom 3"));
        assert!(q.claim("w", 1, now + 1_000_000).await.unwrap().is_empty());
        assert!(q.retry(id, now).await.unwrap());
        assert!(
            !q.retry(id, now).await.unwrap(),
            "only dead jobs are retried"
        );
        let j = q.claim("w", 1, now).await.unwrap();
        assert_eq!(j[0].attempt, 1, "{backend:?}");
    }
}

#[tokio::test]
async fn a_permanent_failure_is_dead_at_once() {
    for (backend, q, _db) in queues(short_lease()).await {
        enqueue(&q, &job("x", 1), 0).await;
        let j = q.claim("w", 1, 0).await.unwrap();
        assert_eq!(
            q.fail(&j[0], "404", true, 0).await.unwrap(),
            Failed::Dead,
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_job_whose_worker_vanished_on_its_last_attempt_goes_dead() {
    for (backend, q, _db) in queues(short_lease()).await {
        let id = enqueue(&q, &job("x", 1), 0).await;
        let mut now = 0;
        for _ in 0..3 {
            assert_eq!(q.claim("w", 1, now).await.unwrap().len(), 1, "{backend:?}");
            now += 10_001;
        }
        assert!(
            q.claim("w", 1, now).await.unwrap().is_empty(),
            "{backend:?}"
        );
        let row = q.get(id).await.unwrap().unwrap();
        assert_eq!(row.state, JobState::Dead, "{backend:?}");
        assert!(row.last_error.unwrap().contains("lease expired"));
    }
}

#[tokio::test]
async fn concurrent_claimers_never_share_a_job() {
    for (backend, q, _db) in queues(QueueConfig::default()).await {
        for n in 0..200 {
            enqueue(&q, &job("x", n), 0).await;
        }
        let mut handles = Vec::new();
        for w in 0..6 {
            let q = q.clone();
            handles.push(tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let j = q.claim(&format!("w{w}"), 7, 1).await.unwrap();
                    if j.is_empty() {
                        break got;
                    }
                    got.extend(j.into_iter().map(|j| j.id));
                }
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.unwrap());
        }
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!((n, all.len()), (200, 200), "{backend:?}");
    }
}

struct Counting {
    runs: AtomicU32,
    fail_first: bool,
}

impl Handler for Counting {
    async fn handle(&self, ctx: &mut JobCtx) -> Result<(), JobError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if self.fail_first && ctx.job.attempt == 1 {
            return Err(JobError::Retry(anyhow::anyhow!("first try fails")));
        }
        if ctx.job.name == "slow" {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        let tx = ctx.queue().store().begin().await?;
        ctx.finish(tx).await
    }
}

#[tokio::test]
async fn workers_drain_the_queue_and_retry_failures() {
    let config = QueueConfig {
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(20),
        ..QueueConfig::default()
    };
    for (backend, q, _db) in queues(config).await {
        let now = now_ms();
        for n in 0..40 {
            enqueue(&q, &job("x", n), now).await;
        }
        let h = Arc::new(Counting {
            runs: AtomicU32::new(0),
            fail_first: true,
        });
        let (tx, rx) = tokio::sync::watch::channel(false);
        let cfg = WorkerConfig {
            poll_interval: Duration::from_millis(20),
            ..WorkerConfig::default()
        };
        let stats = cfg.stats.clone();
        let pool = tokio::spawn(run_workers(q.clone(), h.clone(), cfg, rx));
        while q.pending().await.unwrap() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tx.send(true).unwrap();
        pool.await.unwrap();
        assert_eq!(h.runs.load(Ordering::SeqCst), 80, "{backend:?}");
        assert_eq!(stats.completed.load(Ordering::SeqCst), 40);
        assert_eq!(stats.retried.load(Ordering::SeqCst), 40);
        let counts = q.counts().await.unwrap();
        assert_eq!(counts, vec![("done".to_string(), 40)], "{backend:?}");
    }
}

#[tokio::test]
async fn shutdown_releases_running_jobs_without_counting_the_attempt() {
    for (backend, q, _db) in queues(QueueConfig::default()).await {
        let id = enqueue(&q, &job("slow", 1), now_ms()).await;
        let h = Arc::new(Counting {
            runs: AtomicU32::new(0),
            fail_first: false,
        });
        let (tx, rx) = tokio::sync::watch::channel(false);
        let cfg = WorkerConfig {
            poll_interval: Duration::from_millis(20),
            grace: Duration::from_millis(100),
            ..WorkerConfig::default()
        };
        let pool = tokio::spawn(run_workers(q.clone(), h.clone(), cfg, rx));
        while h.runs.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tx.send(true).unwrap();
        pool.await.unwrap();
        let row = q.get(id).await.unwrap().unwrap();
        assert_eq!(
            (row.state, row.attempts),
            (JobState::Queued, 0),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_stored_state_this_release_does_not_know_is_an_error_not_cancelled() {
    for (backend, q, _db) in queues(short_lease()).await {
        let id = enqueue(&q, &job("x", 1), 1_000).await;
        // A newer release (or a hand edit) wrote a state this one has never heard of.
        bridge_store::sqlx::query("UPDATE jobs SET state = 'paused' WHERE id = $1")
            .bind(id)
            .execute(q.store().pool())
            .await
            .unwrap();
        let e = q
            .get(id)
            .await
            .expect_err("an unknown state must not read as a known one");
        let text = e.to_string();
        assert!(
            text.contains("paused") && text.contains(&id.to_string()),
            "{backend:?}: {text}"
        );
        assert_eq!(JobState::parse("paused"), None);
        assert_eq!(JobState::parse("cancelled"), Some(JobState::Cancelled));
    }
}

/// Holds its own job row (as a completion does until it commits) across a heartbeat.
#[derive(Debug)]
struct HoldsItsRow;

impl Handler for HoldsItsRow {
    async fn handle(&self, ctx: &mut JobCtx) -> Result<(), JobError> {
        let mut tx = ctx.queue().store().begin().await?;
        bridge_store::sqlx::query("UPDATE jobs SET updated_at = updated_at WHERE id = $1")
            .bind(ctx.job.id)
            .execute(&mut *tx)
            .await
            .map_err(|e| JobError::Retry(e.into()))?;
        // Long enough for two heartbeats to fire while the row is held.
        tokio::time::sleep(ctx.queue().config().lease).await;
        ctx.finish(tx).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_that_waits_on_the_jobs_own_transaction_does_not_deadlock_it() {
    let config = QueueConfig {
        lease: Duration::from_millis(900),
        ..short_lease()
    };
    for (backend, q, _db) in queues(config).await {
        let id = enqueue(&q, &job("x", 1), now_ms()).await;
        let (tx, rx) = tokio::sync::watch::channel(false);
        let cfg = WorkerConfig {
            poll_interval: Duration::from_millis(20),
            ..WorkerConfig::default()
        };
        let stats = cfg.stats.clone();
        let pool = tokio::spawn(run_workers(q.clone(), Arc::new(HoldsItsRow), cfg, rx));
        // A bound on the wait, not a timing assertion: before the fix the heartbeat held the
        // worker while the handler, unpolled, held the row, and neither moved again.
        let done = tokio::time::timeout(Duration::from_secs(20), async {
            while q.pending().await.unwrap() > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        tx.send(true).unwrap();
        pool.await.unwrap();
        assert!(done.is_ok(), "{backend:?}: the job never finished");
        let row = q.get(id).await.unwrap().unwrap();
        assert_eq!(
            (row.state, row.attempts),
            (JobState::Done, 1),
            "{backend:?}"
        );
        assert_eq!(stats.completed.load(Ordering::SeqCst), 1, "{backend:?}");
    }
}

#[tokio::test]
async fn a_claim_skipping_paused_orgs_takes_the_others_and_jobs_without_an_org() {
    for (backend, q, _db) in queues(short_lease()).await {
        for (org, n) in [
            (Some(1), 1),
            (Some(1), 2),
            (Some(2), 3),
            (None, 4),
            (Some(3), 5),
        ] {
            let j = NewJob {
                org_id: org,
                ..job("x", n)
            };
            enqueue(&q, &j, 1_000).await;
        }
        let got = q.claim_skipping("w", 10, 1_000, &[1, 3]).await.unwrap();
        let mut orgs: Vec<Option<i64>> = got.iter().map(|j| j.org_id).collect();
        orgs.sort();
        assert_eq!(orgs, vec![None, Some(2)], "{backend:?}");
        // Once unpaused, the skipped jobs are still there, oldest first.
        let rest = q.claim("w", 10, 1_000).await.unwrap();
        let ns: Vec<i64> = rest.iter().map(|j| j.args["n"].as_i64().unwrap()).collect();
        assert_eq!(ns, vec![1, 2, 5], "{backend:?}");
    }
}

/// A disconnect cancelling an org's jobs beside an erasure redacting some of them: the
/// erasure rewrites jobs one by one in id order, but the cancellation took its rows' locks in
/// the order its scan met them (where PostgreSQL keeps each row's latest version, not id
/// order). Holding a later job while waiting on an earlier one the erasure held, it
/// deadlocked with the erasure, and PostgreSQL failed one of the two. It now locks in id
/// order, so it waits for the erasure instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_an_orgs_jobs_beside_a_transaction_rewriting_them_in_id_order_never_deadlocks() {
    use bridge_store::sqlx;
    for (backend, q, _db) in queues(short_lease()).await {
        if backend != Backend::Postgres {
            continue; // SQLite has one writer: its transactions never wait on each other.
        }
        let a = enqueue(&q, &job("x", 1), 1_000).await;
        let b = enqueue(&q, &job("x", 2), 1_000).await;
        // Job a is put off once (a new `run_at`, an indexed column, so PostgreSQL writes a
        // new version of the row rather than one beside the old): its latest version now lies
        // after job b's.
        sqlx::query("UPDATE jobs SET run_at = 2000 WHERE id = $1")
            .bind(a)
            .execute(q.store().pool())
            .await
            .unwrap();

        // The erasure rewrites job a and holds it...
        let mut erasure = q.store().begin().await.unwrap();
        let redact =
            |id: i64| sqlx::query("UPDATE jobs SET args = '{\"erased\":1}' WHERE id = $1").bind(id);
        redact(a).execute(&mut *erasure).await.unwrap();
        // ...while a disconnect cancels the org's jobs...
        let cancel = tokio::spawn({
            let q = q.clone();
            async move {
                let mut tx = q.store().begin().await?;
                let n = bridge_queue::cancel_org(&mut tx, 1, "disconnected", 3_000)
                    .await
                    .map_err(|e| format!("{e:?}"))?;
                tx.commit().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(n)
            }
        });
        // ...until it waits on a row lock, or is done.
        for _ in 0..200 {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock'",
            )
            .fetch_one(q.store().pool())
            .await
            .unwrap();
            if cancel.is_finished() || waiting > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Then the erasure rewrites job b too, in id order.
        let erased = match redact(b).execute(&mut *erasure).await {
            Ok(_) => erasure.commit().await.map_err(|e| format!("{e:?}")),
            Err(e) => Err(format!("{e:?}")),
        };
        let cancelled = cancel.await.unwrap().map_err(|e| e.to_string());
        assert!(erased.is_ok(), "the erasure failed: {erased:?}");
        assert_eq!(cancelled, Ok(2), "the disconnect cancels both jobs");
        for id in [a, b] {
            let row = q.get(id).await.unwrap().unwrap();
            assert_eq!(row.state, JobState::Cancelled, "job {id}");
            assert_eq!(
                row.args,
                json!({"erased": 1}),
                "job {id} keeps its redaction"
            );
        }
    }
}
