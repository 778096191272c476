//! Group commit: callers hand their writes to one committer task, which commits whatever
//! arrived together in one transaction, so one `fsync` acknowledges many requests; each caller
//! still waits for the commit that holds its own write. Webhook intake (`ingest`) and widget
//! intake (`widget_intake`) both store through one.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// Writes committed together at most: bounds a transaction's size and the latency the first
/// write of a batch waits for the last.
const MAX_BATCH: usize = 512;
/// Queued writes before callers wait: back-pressure instead of unbounded memory.
const CHANNEL: usize = 8192;

/// A kind of write a [`Committer`] stores, many at a time.
pub trait GroupWrite: Send + Sync + 'static {
    /// One caller's write.
    type Item: Send + 'static;
    /// What the caller is told once it is committed.
    type Out: Send + 'static;
    /// The histogram of commit times (`driftbridge_..._commit_seconds`) and its help.
    const METRIC: (&'static str, &'static str);

    /// Stores `items` in one transaction and commits it; answers one outcome per item, in
    /// order. On an error nothing of any item is stored.
    fn commit(
        &self,
        items: &[Self::Item],
    ) -> impl Future<Output = Result<Vec<Self::Out>, bridge_queue::Error>> + Send;

    /// Runs after a commit succeeded, with its outcomes (waking the workers, say).
    fn committed(&self, outs: &[Self::Out]);
}

/// A write was not stored; nothing of it was.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    /// The committer task is gone (the process is shutting down).
    #[error("not stored: intake is stopped")]
    Stopped,
    /// The transaction that held this write (and those committed with it) failed.
    #[error("not stored")]
    Commit(#[source] Arc<bridge_queue::Error>),
}

type Reply<W> = oneshot::Sender<Result<<W as GroupWrite>::Out, CommitError>>;

/// Handle to a committer task.
pub struct Committer<W: GroupWrite> {
    tx: mpsc::Sender<(W::Item, Reply<W>)>,
}

impl<W: GroupWrite> Clone for Committer<W> {
    fn clone(&self) -> Self {
        Committer {
            tx: self.tx.clone(),
        }
    }
}

impl<W: GroupWrite> std::fmt::Debug for Committer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer")
            .field("metric", &W::METRIC.0)
            .finish_non_exhaustive()
    }
}

impl<W: GroupWrite> Committer<W> {
    /// Starts the committer task.
    pub fn spawn(writes: W, metrics: Arc<Metrics>) -> Self {
        let (tx, rx) = mpsc::channel(CHANNEL);
        tokio::spawn(run(writes, metrics, rx));
        Committer { tx }
    }

    /// Stores `item` durably with whatever else arrived with it, or says why not.
    pub async fn submit(&self, item: W::Item) -> Result<W::Out, CommitError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((item, reply))
            .await
            .map_err(|_| CommitError::Stopped)?;
        rx.await.unwrap_or(Err(CommitError::Stopped))
    }
}

async fn run<W: GroupWrite>(
    writes: W,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<(W::Item, Reply<W>)>,
) {
    let mut items = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    while let Some((item, reply)) = rx.recv().await {
        items.push(item);
        replies.push(reply);
        while items.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((item, reply)) => {
                    items.push(item);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        match writes.commit(&items).await {
            Ok(outs) => {
                writes.committed(&outs);
                for (reply, out) in replies.drain(..).zip(outs) {
                    let _ = reply.send(Ok(out));
                }
            }
            Err(e) => {
                let e = CommitError::Commit(Arc::new(e));
                tracing::error!(error = %format!("{:#}", anyhow::Error::from(e.clone())),
                    writes = items.len(), what = W::METRIC.0, "a group commit failed");
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
                // A failing database should not be hammered in a tight loop.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        items.clear();
        let (name, help) = W::METRIC;
        metrics.observe(name, help, String::new(), started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use tokio::sync::Semaphore;

    /// Records each commit's items; each commit says it began, then waits for a permit.
    struct Recorder {
        began: mpsc::UnboundedSender<()>,
        gate: Arc<Semaphore>,
        commits: Arc<Mutex<Vec<Vec<u32>>>>,
    }

    impl GroupWrite for Recorder {
        type Item = u32;
        type Out = u32;
        const METRIC: (&'static str, &'static str) = ("test_commit_seconds", "test");

        async fn commit(&self, items: &[u32]) -> Result<Vec<u32>, bridge_queue::Error> {
            let _ = self.began.send(());
            self.gate.acquire().await.expect("open").forget();
            self.commits.lock().push(items.to_vec());
            Ok(items.iter().map(|i| i * 10).collect())
        }

        fn committed(&self, _: &[u32]) {}
    }

    #[tokio::test]
    async fn writes_that_arrive_during_a_commit_share_the_next_one_and_each_gets_its_own_answer() {
        let (began, mut commit_began) = mpsc::unbounded_channel();
        let gate = Arc::new(Semaphore::new(0));
        let commits = Arc::new(Mutex::new(Vec::new()));
        let c = Committer::spawn(
            Recorder {
                began,
                gate: gate.clone(),
                commits: commits.clone(),
            },
            Arc::new(Metrics::default()),
        );
        let submit = |i: u32| {
            let c = c.clone();
            tokio::spawn(async move { c.submit(i).await })
        };
        let first = submit(1);
        commit_began.recv().await.unwrap();
        // While the first write's commit waits, nine more arrive.
        let rest: Vec<_> = (2..=10).map(submit).collect();
        while c.tx.capacity() > CHANNEL - 9 {
            tokio::task::yield_now().await;
        }
        gate.add_permits(2);
        assert_eq!(first.await.unwrap().unwrap(), 10);
        for (i, r) in (2..=10).zip(rest) {
            assert_eq!(r.await.unwrap().unwrap(), i * 10, "write {i}'s own answer");
        }
        let commits = commits.lock().clone();
        assert_eq!(commits.len(), 2, "two commits for ten writes: {commits:?}");
        assert_eq!(commits[0], vec![1]);
        let mut second = commits[1].clone();
        second.sort_unstable();
        assert_eq!(second, (2..=10).collect::<Vec<_>>());
    }
}
