//! Read-backs that the data connector, the demo, the benchmarks and the operator commands
//! need: small documented queries, so that no SQL lives above this crate.

use std::collections::{HashMap, HashSet};

use drift_types::OrgId;

use crate::tables::Table;
use crate::{Op, Result, Store};

/// SQLite resolves `$N` parameters with a linear search; lists are bound 500 at a time.
const IDS_PER_STATEMENT: usize = 500;

/// The stored `updated_at` of those of `ids` that the org has stored.
pub async fn conversation_versions(
    store: &Store,
    org: OrgId,
    ids: &[i64],
) -> Result<HashMap<i64, Option<i64>>> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let list = crate::idlist::literal(chunk);
        // The list holds integers only.
        let rows: Vec<(i64, Option<i64>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, {} FROM conversations WHERE org_id = $1 AND id IN ({list})",
            crate::tables::sql::ms(store.backend(), "updated_at")
        )))
        .bind(org.0)
        .fetch_all(store.pool())
        .await
        .op("reading stored conversations")?;
        out.extend(rows);
    }
    Ok(out)
}

/// The integer ids (second key column) the org has stored in `table`.
pub async fn stored_ids(store: &Store, org: OrgId, table: &'static Table) -> Result<HashSet<i64>> {
    // Table and column names come from the static table definitions, never from input.
    let col = table.columns[1].name;
    let ids: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT {col} FROM {} WHERE org_id = $1",
        table.name
    )))
    .bind(org.0)
    .fetch_all(store.pool())
    .await
    .op("reading stored ids")?;
    Ok(ids.into_iter().collect())
}

/// The orgs that hold a conversation with this id (ids are unique per org only).
pub async fn conversation_orgs(store: &Store, conversation: i64) -> Result<Vec<i64>> {
    sqlx::query_scalar("SELECT org_id FROM conversations WHERE id = $1")
        .bind(conversation)
        .fetch_all(store.pool())
        .await
        .op("finding the conversation's org")
}

/// The longest stored transcript: its conversation id and text (the demo shows it).
pub async fn longest_transcript(store: &Store) -> Result<Option<(i64, String)>> {
    sqlx::query_as(
        "SELECT conversation_id, body FROM transcripts ORDER BY LENGTH(body) DESC LIMIT 1",
    )
    .fetch_optional(store.pool())
    .await
    .op("reading the longest transcript")
}

/// Stored webhook payloads read per statement by [`each_event_payload`].
const PAYLOADS_PER_STATEMENT: i64 = 1000;

/// Hands every stored webhook payload of an org (JSON text, without tokens) to `each`, in the
/// order they were stored, a thousand per statement: the store keeps every webhook an org
/// sent until retention removes it, far more than a process should hold at once.
pub async fn each_event_payload(
    store: &Store,
    org: OrgId,
    mut each: impl FnMut(&str),
) -> Result<()> {
    let mut after = i64::MIN;
    loop {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, payload FROM events WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(org.0)
        .bind(after)
        .bind(PAYLOADS_PER_STATEMENT)
        .fetch_all(store.pool())
        .await
        .op("reading stored events")?;
        for (_, p) in &rows {
            each(p);
        }
        match rows.last() {
            Some((id, _)) if rows.len() as i64 == PAYLOADS_PER_STATEMENT => after = *id,
            _ => return Ok(()),
        }
    }
}

/// When the `done` job made by event `event_id` finished (epoch ms), if it has.
pub async fn job_finished_at(store: &Store, event_id: i64) -> Result<Option<i64>> {
    let at: Option<Option<i64>> =
        sqlx::query_scalar("SELECT finished_at FROM jobs WHERE event_id = $1 AND state = 'done'")
            .bind(event_id)
            .fetch_optional(store.pool())
            .await
            .op("reading a job's completion")?;
    Ok(at.flatten())
}

/// Messages that still have a body (the retention purge clears old ones).
pub async fn message_bodies(store: &Store) -> Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE body IS NOT NULL")
        .fetch_one(store.pool())
        .await
        .op("counting message bodies")
}

/// Creates an empty PostgreSQL database named `name` on the server at `server_url` (dropping
/// an older one of that name) and answers its URL. `name` must be a plain identifier.
pub async fn create_postgres_database(server_url: &str, name: &str) -> Result<String> {
    use sqlx::Connection;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(crate::Error::Url(format!(
            "{name:?} is not a plain database name"
        )));
    }
    let mut conn = sqlx::PgConnection::connect(server_url)
        .await
        .op("connecting to PostgreSQL")?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name}"
    )))
    .execute(&mut conn)
    .await
    .op("dropping the old database")?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .op("creating the database")?;
    let base = server_url.rsplit_once('/').map_or(server_url, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}
