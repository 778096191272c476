//! Export and sync runs: one row per finished run (full export, incremental sync, scheduled
//! sync) with what it wrote and what it cost in Drift calls, for the console's Syncs page
//! and the last-successful-sync metric.

use crate::{Op, Result, Store};

/// A finished run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Run {
    /// Row id (0 before it is recorded).
    pub id: i64,
    /// Org.
    pub org_id: i64,
    /// `full`, `incremental` or `scheduled`.
    pub mode: String,
    /// Where it wrote (`database`, `jsonl:DIR`, ...; never a password).
    pub destination: String,
    /// Started (epoch ms).
    pub started_at: i64,
    /// Finished (epoch ms).
    pub finished_at: i64,
    /// `ok` or `error`.
    pub outcome: String,
    /// Rows written.
    pub rows_written: i64,
    /// Drift API calls.
    pub calls: i64,
    /// Drift's 429 answers.
    pub rate_limited: i64,
    /// The error, when it failed.
    pub error: Option<String>,
}

/// Records a finished run.
pub async fn record(store: &Store, r: &Run) -> Result<()> {
    sqlx::query(
        "INSERT INTO sync_runs (org_id, mode, destination, started_at, finished_at, outcome, \
         rows_written, calls, rate_limited, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(r.org_id)
    .bind(&r.mode)
    .bind(&r.destination)
    .bind(r.started_at)
    .bind(r.finished_at)
    .bind(&r.outcome)
    .bind(r.rows_written)
    .bind(r.calls)
    .bind(r.rate_limited)
    .bind(r.error.as_deref())
    .execute(store.pool())
    .await
    .op("recording a sync run")?;
    Ok(())
}

type Row = (
    i64,
    i64,
    String,
    String,
    i64,
    i64,
    String,
    i64,
    i64,
    i64,
    Option<String>,
);

/// The newest runs first.
pub async fn list(store: &Store, limit: i64) -> Result<Vec<Run>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, org_id, mode, destination, started_at, finished_at, outcome, rows_written, \
         calls, rate_limited, error FROM sync_runs ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(store.pool())
    .await
    .op("listing sync runs")?;
    Ok(rows
        .into_iter()
        .map(|r| Run {
            id: r.0,
            org_id: r.1,
            mode: r.2,
            destination: r.3,
            started_at: r.4,
            finished_at: r.5,
            outcome: r.6,
            rows_written: r.7,
            calls: r.8,
            rate_limited: r.9,
            error: r.10,
        })
        .collect())
}

/// Per org, when its last successful run finished.
pub async fn last_ok(store: &Store) -> Result<Vec<(i64, i64)>> {
    sqlx::query_as(
        "SELECT org_id, MAX(finished_at) FROM sync_runs WHERE outcome = 'ok' GROUP BY org_id \
         ORDER BY org_id",
    )
    .fetch_all(store.pool())
    .await
    .op("reading the last successful syncs")
}

/// Export checkpoints: (org, stream, when it last moved, its state as stored).
pub async fn checkpoints(store: &Store) -> Result<Vec<(i64, String, i64, String)>> {
    sqlx::query_as(
        "SELECT org_id, stream, updated_at, state FROM export_checkpoints ORDER BY org_id, stream",
    )
    .fetch_all(store.pool())
    .await
    .op("listing export checkpoints")
}
