//! An open destination: a driftbridge store (SQL) or a directory of part files. Rows and
//! checkpoints are committed together, so a resumed run starts exactly after the last page.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bridge_store::tables::{Batch, Table};
use bridge_store::{Op, Store, checkpoints, reads, warehouse};
use drift_types::OrgId;
use serde_json::Value;

use crate::error::Result;
use crate::files;
use crate::target::Target;

/// An open destination for one org: rows and checkpoints are committed together.
#[derive(Debug, Clone)]
pub struct Destination {
    org: OrgId,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Sql(Store),
    Files(Arc<files::Files>),
}

impl Destination {
    /// Opens (creating and migrating as needed) the destination.
    pub async fn open(target: &Target, org: OrgId) -> Result<Self> {
        let kind = match target {
            Target::Sql(url) => Kind::Sql(Store::connect(url).await?),
            Target::Files { format, dir } => {
                let (format, dir) = (*format, dir.clone());
                Kind::Files(Arc::new(
                    blocking(move || files::Files::open(format, &dir, org)).await?,
                ))
            }
        };
        Ok(Destination { org, kind })
    }

    /// Uses an already open store.
    pub fn store(store: Store, org: OrgId) -> Self {
        Destination {
            org,
            kind: Kind::Sql(store),
        }
    }

    /// The saved state of `stream`.
    pub async fn checkpoint(&self, stream: &str) -> Result<Option<Value>> {
        match &self.kind {
            Kind::Sql(store) => {
                let mut conn = store.acquire().await?;
                Ok(checkpoints::load(&mut conn, self.org, stream).await?)
            }
            Kind::Files(f) => Ok(f.checkpoint(stream)),
        }
    }

    /// Writes the rows and the checkpoints atomically; answers how many rows changed (for
    /// files: how many were written).
    pub async fn commit(&self, batch: Batch, states: Vec<(String, Value)>) -> Result<u64> {
        match &self.kind {
            Kind::Sql(store) => {
                let mut tx = store.begin().await?;
                let changed = warehouse::write(&mut tx, &batch).await?;
                let now = drift_types::now_ms();
                for (stream, state) in &states {
                    checkpoints::save(&mut tx, self.org, stream, state, now).await?;
                }
                tx.commit().await.op("committing an export page")?;
                Ok(changed)
            }
            Kind::Files(f) => {
                let f = f.clone();
                blocking(move || f.commit(&batch, states)).await
            }
        }
    }

    /// Makes every commit so far durable (files: completes the open parts and lists them in
    /// the manifest with their checkpoints; SQL commits are durable already).
    pub async fn flush(&self) -> Result<()> {
        match &self.kind {
            Kind::Sql(_) => Ok(()),
            Kind::Files(f) => {
                let f = f.clone();
                blocking(move || f.flush()).await
            }
        }
    }

    /// Forgets the checkpoints of `streams`; for files also the rows written so far, since
    /// files cannot be upserted and a new full export would duplicate them.
    pub async fn reset(&self, streams: &[String]) -> Result<()> {
        match &self.kind {
            Kind::Sql(store) => {
                let mut conn = store.acquire().await?;
                for s in streams {
                    checkpoints::save(&mut conn, self.org, s, &Value::Null, 0).await?;
                }
                Ok(())
            }
            Kind::Files(f) => {
                let f = f.clone();
                blocking(move || f.reset()).await
            }
        }
    }

    /// The stored `updated_at` of those of `ids` that are stored (SQL only; files know none).
    pub async fn conversation_versions(&self, ids: &[i64]) -> Result<HashMap<i64, Option<i64>>> {
        match &self.kind {
            Kind::Sql(store) => Ok(reads::conversation_versions(store, self.org, ids).await?),
            Kind::Files(_) => Ok(HashMap::new()),
        }
    }

    /// The integer ids (second key column) stored in `table` for this org.
    pub async fn stored_ids(&self, table: &'static Table) -> Result<HashSet<i64>> {
        match &self.kind {
            Kind::Sql(store) => Ok(reads::stored_ids(store, self.org, table).await?),
            Kind::Files(f) => {
                let f = f.clone();
                blocking(move || f.stored_ids(table)).await
            }
        }
    }

    /// The org it holds.
    pub fn org(&self) -> OrgId {
        self.org
    }

    /// The store behind a SQL destination.
    pub fn sql_store(&self) -> Option<&Store> {
        match &self.kind {
            Kind::Sql(s) => Some(s),
            Kind::Files(_) => None,
        }
    }
}

/// Runs file work off the runtime's workers; on a one-thread runtime (the one-shot commands'),
/// in place: nothing else there needs the thread while a page is written, and the thread that
/// decoded the page then writes it, reusing the memory the decoding freed.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if Handle::current().runtime_flavor() == RuntimeFlavor::CurrentThread {
        return f();
    }
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}
