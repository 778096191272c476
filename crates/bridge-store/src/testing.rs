//! Test support shared by the crates' test suites: a fresh database per test on either
//! backend. Not used by the product.
//!
//! PostgreSQL tests use the server at `DRIFTBRIDGE_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/test`), creating one database per test. Without a
//! reachable server they skip, except under `CI=true`, where they fail.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, Executor};

/// The backends a parameterised test runs on.
pub const BACKENDS: &[crate::Backend] = &[crate::Backend::Sqlite, crate::Backend::Postgres];

/// Prefix of the databases the tests create.
const PREFIX: &str = "dbt_";
/// Test databases older than this are dropped by later runs.
const STALE_SECS: u64 = 3600;

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn admin_url() -> String {
    std::env::var("DRIFTBRIDGE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn with_db(url: &str, db: &str) -> String {
    match url.rfind('/') {
        Some(i) if i > "postgres://".len() => format!("{}/{db}", &url[..i]),
        _ => format!("{url}/{db}"),
    }
}

/// A database for one test. For SQLite, a file in a temporary directory that lives as long as
/// this value.
#[derive(Debug)]
pub struct TestDb {
    /// URL to give `Store::connect` (or `--database-url`).
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh database on `backend`, or `None` when PostgreSQL is unavailable outside CI.
pub async fn fresh(backend: crate::Backend) -> Option<TestDb> {
    match backend {
        crate::Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temporary directory");
            let url = format!("sqlite:{}", dir.path().join("test.db").display());
            Some(TestDb {
                url,
                _dir: Some(dir),
            })
        }
        crate::Backend::Postgres => fresh_postgres().await.map(|url| TestDb { url, _dir: None }),
    }
}

async fn fresh_postgres() -> Option<String> {
    let admin = admin_url();
    let mut conn = match sqlx::PgConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("PostgreSQL is required under CI=true but {admin} failed: {e}");
            }
            eprintln!("skipping the PostgreSQL half of this test: {e}");
            return None;
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let old: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'dbt\\_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
    for name in old {
        let born = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('_').next())
            .and_then(|t| t.parse::<u64>().ok());
        if born.is_some_and(|b| b + STALE_SECS < now) {
            let _ = conn
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await;
        }
    }
    let name = format!(
        "{PREFIX}{now}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("CREATE DATABASE");
    Some(with_db(&admin, &name))
}
