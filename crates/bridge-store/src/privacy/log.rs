//! The erasure log: one row per erasure and one per sink, holding no personal data, read by
//! `driftbridge gdpr log` as proof of what was erased where.

use std::collections::BTreeMap;

use crate::{Conn, Op, Result};

/// One erasure.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Erasure {
    /// Its id.
    pub id: i64,
    /// The org.
    pub org_id: i64,
    /// The keyed digest of the email (no plaintext).
    pub subject: String,
    /// `webhook` or `cli`.
    pub source: String,
    /// The `gdpr_delete_requested` event, when one asked.
    pub event_id: Option<i64>,
    /// When it was asked for (epoch ms).
    pub requested_at: i64,
    /// When the store's rows were erased (epoch ms).
    pub erased_at: i64,
    /// Rows removed or redacted, by table.
    pub summary: BTreeMap<String, i64>,
    /// Each sink's part.
    pub sinks: Vec<ErasureSink>,
}

/// One sink's part of an erasure.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ErasureSink {
    /// Sink name.
    pub sink: String,
    /// `pending`, `done`, `nothing` or `failed`.
    pub state: String,
    /// Records the sink deleted (or was told of).
    pub records: i64,
    /// The last failure.
    pub last_error: Option<String>,
    /// Last change (epoch ms).
    pub updated_at: i64,
}

type Row = (i64, i64, String, String, Option<i64>, i64, i64, String);

/// Every erasure, newest first (`limit` of them), with its sinks.
pub async fn erasures(conn: &mut Conn, limit: i64) -> Result<Vec<Erasure>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, org_id, subject, source, event_id, requested_at, erased_at, summary \
         FROM erasures ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
    .op("reading erasures")?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let sinks = sink_states(conn, r.0).await?;
        out.push(from_row(r, sinks));
    }
    Ok(out)
}

/// One erasure.
pub async fn erasure(conn: &mut Conn, id: i64) -> Result<Option<Erasure>> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, org_id, subject, source, event_id, requested_at, erased_at, summary \
         FROM erasures WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .op("reading an erasure")?;
    match row {
        Some(r) => {
            let sinks = sink_states(conn, r.0).await?;
            Ok(Some(from_row(r, sinks)))
        }
        None => Ok(None),
    }
}

fn from_row(r: Row, sinks: Vec<ErasureSink>) -> Erasure {
    Erasure {
        id: r.0,
        org_id: r.1,
        subject: r.2,
        source: r.3,
        event_id: r.4,
        requested_at: r.5,
        erased_at: r.6,
        summary: serde_json::from_str(&r.7).unwrap_or_default(),
        sinks,
    }
}

/// The sinks of one erasure.
pub async fn sink_states(conn: &mut Conn, erasure: i64) -> Result<Vec<ErasureSink>> {
    let rows: Vec<(String, String, i64, Option<String>, i64)> = sqlx::query_as(
        "SELECT sink, state, records, last_error, updated_at FROM erasure_sinks \
         WHERE erasure_id = $1 ORDER BY sink",
    )
    .bind(erasure)
    .fetch_all(conn)
    .await
    .op("reading an erasure's sinks")?;
    Ok(rows
        .into_iter()
        .map(
            |(sink, state, records, last_error, updated_at)| ErasureSink {
                sink,
                state,
                records,
                last_error,
                updated_at,
            },
        )
        .collect())
}

/// Sets one sink's state of an erasure (creating the row).
pub async fn mark_sink(
    conn: &mut Conn,
    erasure: i64,
    sink: &str,
    state: &str,
    records: i64,
    error: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO erasure_sinks (erasure_id, sink, state, records, last_error, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (erasure_id, sink) DO UPDATE SET \
         state = excluded.state, records = excluded.records, last_error = excluded.last_error, \
         updated_at = excluded.updated_at",
    )
    .bind(erasure)
    .bind(sink)
    .bind(state)
    .bind(records)
    .bind(error)
    .bind(drift_types::now_ms())
    .execute(conn)
    .await
    .op("recording a sink's erasure")?;
    Ok(())
}

/// The newest erasure of the org (0 when none): an export that read the tombstones at this
/// erasure reads them again when a newer one appears.
pub async fn latest_erasure(conn: &mut Conn, org: i64) -> Result<i64> {
    sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM erasures WHERE org_id = $1")
        .bind(org)
        .fetch_one(conn)
        .await
        .op("reading the newest erasure")
}
