#![doc = include_str!("../README.md")]

mod files;
pub mod http;
pub mod hubspot;
pub mod marketo;
pub mod outbound;
mod parquet_file;
pub mod salesforce;
pub mod sink;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use bridge_store::tables::{Batch, Table};
use bridge_store::{Store, checkpoints, warehouse};
use drift_types::OrgId;
use serde_json::Value;

pub use files::{FileFormat, read_table};

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    drift_types::EpochMillis::now().0
}

/// What went wrong in a destination.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `--to` value is not one of the accepted forms.
    #[error(
        "unknown destination {0:?}: use sqlite:PATH, postgres://..., jsonl:DIR, csv:DIR or parquet:DIR"
    )]
    Target(String),
    /// The SQL store failed.
    #[error(transparent)]
    Store(#[from] bridge_store::Error),
    /// A file could not be read or written.
    #[error("{op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Which file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file we wrote could not be read back, or one in the directory is not ours.
    #[error("{path} is not a readable driftbridge file: {message}")]
    Corrupt {
        /// Which file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Destination result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where an export goes, parsed from `--to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A driftbridge store: `sqlite:PATH` or `postgres://...` (the same tables as `serve`).
    Sql(String),
    /// One folder per table of part files, plus `_manifest.json`.
    Files {
        /// JSON lines, CSV or Parquet.
        format: FileFormat,
        /// The directory.
        dir: PathBuf,
    },
}

impl FromStr for Target {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Target::Sql(s.to_owned()));
        }
        let Some((scheme, rest)) = s.split_once(':') else {
            return Err(Error::Target(s.to_owned()));
        };
        if rest.is_empty() {
            return Err(Error::Target(s.to_owned()));
        }
        let format = match scheme {
            "sqlite" => return Ok(Target::Sql(s.to_owned())),
            "jsonl" => FileFormat::Jsonl,
            "csv" => FileFormat::Csv,
            "parquet" => FileFormat::Parquet,
            _ => return Err(Error::Target(s.to_owned())),
        };
        Ok(Target::Files {
            format,
            dir: PathBuf::from(rest),
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Sql(url) => f.write_str(&bridge_store::redact_url(url)),
            Target::Files { format, dir } => write!(f, "{}:{}", format.name(), dir.display()),
        }
    }
}

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

    /// Whether rows are upserted by key (SQL), so that an incremental sync can update them.
    pub fn upserts(&self) -> bool {
        matches!(self.kind, Kind::Sql(_))
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
                let now = drift_types::EpochMillis::now().0;
                for (stream, state) in &states {
                    checkpoints::save(&mut tx, self.org, stream, state, now).await?;
                }
                tx.commit()
                    .await
                    .map_err(|source| bridge_store::Error::Sqlx {
                        op: "committing an export page",
                        source,
                    })?;
                Ok(changed)
            }
            Kind::Files(f) => {
                let f = f.clone();
                blocking(move || f.commit(&batch, states)).await
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
        let Kind::Sql(store) = &self.kind else {
            return Ok(HashMap::new());
        };
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            // The list holds integers only.
            let rows: Vec<(i64, Option<i64>)> =
                bridge_store::sqlx::query_as(bridge_store::sqlx::AssertSqlSafe(format!(
                    "SELECT id, updated_at FROM conversations WHERE org_id = $1 AND id IN ({list})"
                )))
                .bind(self.org.0)
                .fetch_all(store.pool())
                .await
                .map_err(|source| bridge_store::Error::Sqlx {
                    op: "reading stored conversations",
                    source,
                })?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// The integer ids (second key column) stored in `table` for this org.
    pub async fn stored_ids(&self, table: &'static Table) -> Result<HashSet<i64>> {
        match &self.kind {
            Kind::Sql(store) => {
                let col = table.columns[1].name;
                let ids: Vec<i64> =
                    bridge_store::sqlx::query_scalar(bridge_store::sqlx::AssertSqlSafe(format!(
                        "SELECT {col} FROM {} WHERE org_id = $1",
                        table.name
                    )))
                    .bind(self.org.0)
                    .fetch_all(store.pool())
                    .await
                    .map_err(|source| bridge_store::Error::Sqlx {
                        op: "reading stored ids",
                        source,
                    })?;
                Ok(ids.into_iter().collect())
            }
            Kind::Files(f) => {
                let f = f.clone();
                blocking(move || f.stored_ids(table)).await
            }
        }
    }

    /// The store behind a SQL destination.
    pub fn sql_store(&self) -> Option<&Store> {
        match &self.kind {
            Kind::Sql(s) => Some(s),
            Kind::Files(_) => None,
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_from_their_urls_and_bad_ones_say_what_is_accepted() {
        assert_eq!(
            "sqlite:out.db".parse::<Target>().unwrap(),
            Target::Sql("sqlite:out.db".into())
        );
        assert!(matches!(
            "postgres://u@h/db".parse::<Target>().unwrap(),
            Target::Sql(_)
        ));
        assert_eq!(
            "parquet:/tmp/x".parse::<Target>().unwrap(),
            Target::Files {
                format: FileFormat::Parquet,
                dir: "/tmp/x".into()
            }
        );
        for bad in ["s3://bucket", "jsonl:", "out.db", "mysql://x"] {
            let e = bad.parse::<Target>().unwrap_err().to_string();
            assert!(e.contains("jsonl:DIR"), "{bad}: {e}");
        }
        assert_eq!(
            Target::Sql("postgres://u:pw@h/db".into()).to_string(),
            bridge_store::redact_url("postgres://u:pw@h/db")
        );
    }
}
