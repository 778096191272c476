//! What an export writes to: a destination that commits rows together with checkpoints.

use std::collections::{HashMap, HashSet};
use std::future::Future;

use anyhow::Result;
use bridge_store::tables::{Batch, Table};
use serde_json::Value;

use crate::destination::Destination;

/// Where exported rows go: a destination that commits rows together with checkpoints.
pub trait ExportDestination: Clone + Send + Sync + 'static {
    /// The saved state of `stream`.
    fn checkpoint(&self, stream: &str) -> impl Future<Output = Result<Option<Value>>> + Send;
    /// Writes rows and checkpoints atomically; answers how many rows changed.
    fn commit(
        &self,
        batch: Batch,
        states: Vec<(String, Value)>,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// Forgets the checkpoints (and for append-only sinks the rows) of `streams`.
    fn reset(&self, streams: &[String]) -> impl Future<Output = Result<()>> + Send;
    /// Stored `updated_at` per conversation id, where the sink can tell.
    fn conversation_versions(
        &self,
        ids: &[i64],
    ) -> impl Future<Output = Result<HashMap<i64, Option<i64>>>> + Send;
    /// Ids already stored in `table`, where the sink can tell.
    fn stored_ids(
        &self,
        table: &'static Table,
    ) -> impl Future<Output = Result<HashSet<i64>>> + Send;
    /// Marks stored conversations gone from Drift at `at` (a SQL destination; others hold no
    /// earlier rows to mark); answers how many it marked.
    fn mark_deleted(&self, ids: &[i64], at: i64) -> impl Future<Output = Result<u64>> + Send;
    /// Makes every commit so far durable: a file destination completes its open parts and
    /// lists them, with their checkpoints, in its manifest. Called at the end of every run,
    /// also one that failed.
    fn flush(&self) -> impl Future<Output = Result<()>> + Send;
}

impl ExportDestination for Destination {
    async fn checkpoint(&self, stream: &str) -> Result<Option<Value>> {
        Ok(Destination::checkpoint(self, stream)
            .await?
            .filter(|v| !v.is_null()))
    }
    async fn commit(&self, batch: Batch, states: Vec<(String, Value)>) -> Result<u64> {
        Ok(Destination::commit(self, batch, states).await?)
    }
    async fn reset(&self, streams: &[String]) -> Result<()> {
        Ok(Destination::reset(self, streams).await?)
    }
    async fn conversation_versions(&self, ids: &[i64]) -> Result<HashMap<i64, Option<i64>>> {
        Ok(Destination::conversation_versions(self, ids).await?)
    }
    async fn stored_ids(&self, table: &'static Table) -> Result<HashSet<i64>> {
        Ok(Destination::stored_ids(self, table).await?)
    }
    async fn flush(&self) -> Result<()> {
        Ok(Destination::flush(self).await?)
    }
    async fn mark_deleted(&self, ids: &[i64], at: i64) -> Result<u64> {
        let Some(store) = self.sql_store() else {
            return Ok(0);
        };
        let mut tx = store.begin().await?;
        let n = bridge_store::ops::conversation::mark_deleted(
            &mut tx,
            bridge_store::ops::conversation::Deletable::Conversations,
            self.org().0,
            ids,
            at,
        )
        .await?;
        tx.commit()
            .await
            .map_err(|e| anyhow::anyhow!("committing the deletes: {e}"))?;
        Ok(n)
    }
}
