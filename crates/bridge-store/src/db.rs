//! Connecting to SQLite or PostgreSQL through one pool type.
//!
//! Both backends run the same SQL (numbered `$N` parameters, `ON CONFLICT` upserts,
//! `RETURNING`); the few statements that differ ask [`Store::backend`]. SQLite runs in WAL
//! mode with `synchronous = FULL`, so a commit is on disk before it returns, and through a
//! single pooled connection: SQLite has one writer anyway, and one connection cannot meet
//! "database is locked" from itself. Other processes on the same file wait up to
//! `busy_timeout`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, ConnectOptions, Connection, Executor};

use crate::backend::{Backend, Tx};
use crate::error::{Error, Op, Result};

/// Pool settings.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Pool size for PostgreSQL (SQLite always uses one connection).
    pub max_connections: u32,
    /// How long a statement waits for another process's lock on a SQLite file.
    pub busy_timeout: Duration,
    /// Applies migrations up to this version only (`None`: all). For tests that build a
    /// store with an older schema and then migrate it.
    pub schema_version: Option<i64>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            busy_timeout: Duration::from_secs(10),
            schema_version: None,
        }
    }
}

/// The database: a pool, its backend, and the URL it came from (password redacted in `Debug`).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: Arc<str>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("url", &redact_url(&self.url))
            .finish()
    }
}

/// The URL with any password replaced.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:[redacted]{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The file a SQLite URL names (`None` for PostgreSQL and in-memory databases).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let (normalized, backend) = normalize(url).ok()?;
    if backend != Backend::Sqlite {
        return None;
    }
    let path = normalized.strip_prefix("sqlite:")?.split('?').next()?;
    (!path.starts_with(":memory:")).then(|| std::path::PathBuf::from(path))
}

/// Turns what a user typed (`sqlite:PATH`, `sqlite://PATH`, a bare path, `postgres://...`)
/// into a driver URL and its backend.
fn normalize(url: &str) -> Result<(String, Backend)> {
    let url = url.trim();
    if url.is_empty() {
        return Err(Error::Url(
            "empty; give sqlite:PATH or postgres://...".into(),
        ));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((url.to_owned(), Backend::Postgres));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path.contains("://") {
        return Err(Error::Url(format!(
            "{:?}: only sqlite: and postgres:// are supported",
            redact_url(url)
        )));
    }
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    if path.is_empty() {
        return Err(Error::Url("sqlite: needs a file path".into()));
    }
    let mut q = query.to_owned();
    if !q.split('&').any(|kv| kv.starts_with("mode=")) {
        if !q.is_empty() {
            q.push('&');
        }
        q.push_str("mode=rwc");
    }
    Ok((format!("sqlite:{path}?{q}"), Backend::Sqlite))
}

impl Store {
    /// Connects with default options and applies migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    /// Connects and applies migrations.
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let (driver_url, backend) = normalize(url)?;
        // Statements are not logged by the driver: a multi-row upsert's text runs to
        // hundreds of kilobytes, and the store reports its own failures with context.
        let connect = AnyConnectOptions::from_str(&driver_url)
            .map_err(|e| Error::Url(format!("{}: {e}", redact_url(url))))?
            .log_statements(tracing::log::LevelFilter::Off)
            .log_slow_statements(tracing::log::LevelFilter::Off, Duration::from_secs(1));
        // One direct connection first, so an unreachable server or a bad password fails at
        // once with the driver's reason instead of after the pool's acquire timeout.
        let unreachable = |e| Error::Connect {
            target: redact_url(url),
            source: crate::error::Driver(e),
        };
        sqlx::AnyConnection::connect_with(&connect)
            .await
            .map_err(unreachable)?
            .close()
            .await
            .map_err(unreachable)?;
        let busy_ms = options.busy_timeout.as_millis();
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .acquire_timeout(Duration::from_secs(60))
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            let busy = format!("PRAGMA busy_timeout = {busy_ms}");
                            conn.execute(sqlx::AssertSqlSafe(busy)).await?;
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            // Deleted and overwritten content is zeroed in the file, so an
                            // erased person's bytes do not linger in free space.
                            conn.execute("PRAGMA secure_delete = ON").await?;
                            Ok(())
                        })
                    })
                    .connect_with(connect)
                    .await
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(connect)
                    .await
            }
        }
        .map_err(unreachable)?;
        let store = Self {
            pool,
            backend,
            url: url.into(),
        };
        crate::migrate::run(&store.pool, store.backend, options.schema_version).await?;
        Ok(store)
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for statements outside a transaction.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The URL this store was opened with (may hold a password: do not log it; see
    /// [`redact_url`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One pooled connection.
    pub async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<Any>> {
        self.pool.acquire().await.op("acquiring a connection")
    }

    /// Starts a transaction.
    pub async fn begin(&self) -> Result<Tx> {
        match self.backend {
            // Each transaction says its own level: the one SQLite connection is shared by
            // transactions of both kinds. IMMEDIATE takes the write lock at the start, waiting
            // `busy_timeout` for another process's: a deferred transaction that reads first
            // (the erasure tombstones, say) and writes later fails at once with SQLITE_BUSY
            // when another process committed in between.
            Backend::Sqlite => {
                self.pool
                    .begin_with("PRAGMA synchronous = FULL; BEGIN IMMEDIATE")
                    .await
            }
            Backend::Postgres => self.pool.begin().await,
        }
        .op("starting a transaction")
    }

    /// A transaction for work that is redone when its commit is lost: a job's rows and its
    /// completion (the job is still queued or running, and runs again). Its commit does not
    /// wait for the disk: a process crash keeps it, a power cut or OS crash may drop the last
    /// such commits. SQLite `synchronous = NORMAL` (WAL), PostgreSQL `synchronous_commit =
    /// off`. A later [`Store::begin`] commit makes every earlier one durable with it (SQLite
    /// syncs the whole WAL; PostgreSQL flushes its WAL in order), so what was acknowledged to
    /// anyone never depends on a relaxed commit.
    pub async fn begin_redoable(&self) -> Result<Tx> {
        match self.backend {
            Backend::Sqlite => {
                self.pool
                    .begin_with("PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE")
                    .await
            }
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN; SET LOCAL synchronous_commit = off")
                    .await
            }
        }
        .op("starting a transaction")
    }

    /// SQLite: copies the WAL into the database file and truncates it to zero bytes, so no
    /// older version of a page (say, one an erasure just zeroed) survives in the `-wal` file.
    /// Answers whether it completed: a reader in another process holding an old snapshot
    /// makes it wait, and after `tries` attempts 100 ms apart it gives up. PostgreSQL: nothing
    /// to do (answers true); see docs/PRIVACY.md for what VACUUM does.
    pub async fn checkpoint(&self, tries: u32) -> Result<bool> {
        if self.backend != Backend::Sqlite {
            return Ok(true);
        }
        for attempt in 0..tries.max(1) {
            let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&self.pool)
                .await
                .op("checkpointing the WAL")?;
            if busy == 0 {
                return Ok(true);
            }
            if attempt + 1 < tries {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(false)
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Rows in each warehouse and bookkeeping table, in schema order.
    pub async fn table_counts(&self) -> Result<Vec<(&'static str, i64)>> {
        let mut out = Vec::new();
        for table in crate::tables::TABLES
            .iter()
            .map(|t| t.name)
            .chain(["events", "jobs"])
        {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                // `table` comes from the constant list above, never from input.
                "SELECT COUNT(*) FROM {table}"
            )))
            .fetch_one(&self.pool)
            .await
            .op("counting rows")?;
            out.push((table, n));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalized_by_backend() {
        assert_eq!(
            normalize("db.sqlite").unwrap(),
            ("sqlite:db.sqlite?mode=rwc".into(), Backend::Sqlite)
        );
        assert_eq!(
            normalize("sqlite:///tmp/x.db?mode=ro").unwrap(),
            ("sqlite:/tmp/x.db?mode=ro".into(), Backend::Sqlite)
        );
        assert_eq!(normalize("postgres://h/db").unwrap().1, Backend::Postgres);
        assert!(normalize("mysql://h/db").is_err());
        assert!(normalize("").is_err());
        assert!(normalize("sqlite:").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://me:hunter2@db:5432/x"),
            "postgres://me:[redacted]@db:5432/x"
        );
        assert_eq!(redact_url("postgres://db/x"), "postgres://db/x");
    }
}
