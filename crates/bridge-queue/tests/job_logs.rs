//! What a job logs, in a test binary of its own: tracing caches whether a callsite is enabled,
//! and a test that sets a subscriber for its thread only can miss its spans when another test
//! in the same process meets those callsites first, at the same moment, with none (the job
//! span came out missing about one run in ten beside the queue's other tests).

use std::sync::Arc;
use std::time::Duration;

use bridge_queue::{Handler, JobCtx, JobError, Queue, QueueConfig, WorkerConfig, run_workers};
use bridge_store::testing::fresh;
use bridge_store::{Backend, Store};

mod common;
use common::{enqueue, job, now_ms};

/// Collects what a `fmt` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Logging;

impl Handler for Logging {
    async fn handle(&self, ctx: &mut JobCtx) -> Result<(), JobError> {
        tracing::info!("the handler speaks");
        let tx = ctx.queue().store().begin().await?;
        ctx.finish(tx).await
    }
}

#[tokio::test]
async fn what_a_job_logs_carries_its_id_kind_org_and_attempt() {
    let Some(db) = fresh(Backend::Sqlite).await else {
        return;
    };
    let q = Queue::new(
        Store::connect(&db.url).await.unwrap(),
        QueueConfig::default(),
    );
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test's runtime has one thread: the workers' tasks see this subscriber too.
    let _guard = tracing::subscriber::set_default(subscriber);
    let id = enqueue(&q, &job("logs", 1), now_ms()).await;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let pool = tokio::spawn(run_workers(
        q.clone(),
        Arc::new(Logging),
        WorkerConfig::default(),
        rx,
    ));
    while q.pending().await.unwrap() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tx.send(true).unwrap();
    pool.await.unwrap();
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("the handler speaks"))
        .unwrap_or_else(|| panic!("the handler's line: {text}"));
    assert!(
        line.contains(&format!(
            "job{{job.id={id} job.kind=logs org.id=1 job.attempt=1}}"
        )),
        "{line}"
    );
}
