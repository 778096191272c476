//! The `deliveries` table: per (org, conversation, sink), the CRM's ids for what we wrote,
//! the hash of the content written, and a hold so one job at a time delivers a row.

use std::collections::BTreeMap;

use crate::{Conn, Op, Result, Store};

/// Which delivery row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key<'a> {
    /// Drift org.
    pub org: i64,
    /// Conversation.
    pub conversation: i64,
    /// Sink name.
    pub sink: &'a str,
}

/// A delivery row.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Delivery {
    /// Drift org.
    pub org_id: i64,
    /// Conversation.
    pub conversation_id: i64,
    /// Sink name.
    pub sink: String,
    /// `new`, `delivered` or `failed`.
    pub state: String,
    /// External ids by role.
    pub external_ids: BTreeMap<String, String>,
    /// Hash of the content last delivered.
    pub content_hash: Option<String>,
    /// When an unrecorded attempt began writing.
    pub pending_since: Option<i64>,
    /// Successful deliveries so far.
    pub deliveries: i64,
    /// The last failure.
    pub last_error: Option<String>,
    /// Last change (epoch ms).
    pub updated_at: i64,
}

macro_rules! columns {
    () => {
        "org_id, conversation_id, sink, state, external_ids, content_hash, pending_since, \
         deliveries, last_error, updated_at"
    };
}

type RowTuple = (
    i64,
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    i64,
    Option<String>,
    i64,
);

fn from_row(r: RowTuple) -> Delivery {
    Delivery {
        org_id: r.0,
        conversation_id: r.1,
        sink: r.2,
        state: r.3,
        external_ids: serde_json::from_str(&r.4).unwrap_or_default(),
        content_hash: r.5,
        pending_since: r.6,
        deliveries: r.7,
        last_error: r.8,
        updated_at: r.9,
    }
}

/// Takes the row for `holder` (a job id) until `held_until`, creating it when absent. `None`
/// when another job holds it and its hold has not expired. The holder itself may re-take it
/// (a new attempt of the same job).
pub async fn claim(
    store: &Store,
    key: &Key<'_>,
    holder: i64,
    now_ms: i64,
    held_until: i64,
) -> Result<Option<Delivery>> {
    let mut conn = store.acquire().await?;
    // One statement (one commit): create the row held, or take it when free or expired.
    let n = sqlx::query(
        "INSERT INTO deliveries (org_id, conversation_id, sink, state, external_ids, holder, \
         held_until, created_at, updated_at) VALUES ($1, $2, $3, 'new', '{}', $4, $5, $6, $6) \
         ON CONFLICT (org_id, conversation_id, sink) DO UPDATE SET holder = excluded.holder, \
         held_until = excluded.held_until WHERE deliveries.holder IS NULL \
         OR deliveries.holder = excluded.holder OR deliveries.held_until < $6",
    )
    .bind(key.org)
    .bind(key.conversation)
    .bind(key.sink)
    .bind(holder)
    .bind(held_until)
    .bind(now_ms)
    .execute(&mut *conn)
    .await
    .op("holding a delivery row")?
    .rows_affected();
    if n == 0 {
        return Ok(None);
    }
    get_on(&mut conn, key).await
}

/// The row, if any.
pub async fn get(store: &Store, key: &Key<'_>) -> Result<Option<Delivery>> {
    let mut conn = store.acquire().await?;
    get_on(&mut conn, key).await
}

async fn get_on(conn: &mut Conn, key: &Key<'_>) -> Result<Option<Delivery>> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM deliveries WHERE org_id = $1 AND conversation_id = $2 AND sink = $3"
    );
    let r: Option<RowTuple> = sqlx::query_as(SQL)
        .bind(key.org)
        .bind(key.conversation)
        .bind(key.sink)
        .fetch_optional(conn)
        .await
        .op("reading a delivery")?;
    Ok(r.map(from_row))
}

/// Marks that `holder` is about to write to the CRM (kept from an earlier unrecorded
/// attempt when already set). Committed before the first CRM call.
pub async fn begin_write(store: &Store, key: &Key<'_>, holder: i64, now_ms: i64) -> Result<()> {
    let mut conn = store.acquire().await?;
    sqlx::query(
        "UPDATE deliveries SET pending_since = COALESCE(pending_since, $5), updated_at = $5 \
         WHERE org_id = $1 AND conversation_id = $2 AND sink = $3 AND holder = $4",
    )
    .bind(key.org)
    .bind(key.conversation)
    .bind(key.sink)
    .bind(holder)
    .bind(now_ms)
    .execute(&mut *conn)
    .await
    .op("marking a delivery pending")?;
    Ok(())
}

/// Records a delivered write and releases the hold, inside the job's transaction. `false`
/// when `holder` no longer holds the row.
pub async fn record(
    conn: &mut Conn,
    key: &Key<'_>,
    holder: i64,
    external: &BTreeMap<String, String>,
    content_hash: &str,
    now_ms: i64,
) -> Result<bool> {
    let ids = serde_json::to_string(external).unwrap_or_else(|_| "{}".into());
    let n = sqlx::query(
        "UPDATE deliveries SET state = 'delivered', external_ids = $5, content_hash = $6, \
         pending_since = NULL, holder = NULL, held_until = NULL, deliveries = deliveries + 1, \
         last_error = NULL, updated_at = $7 \
         WHERE org_id = $1 AND conversation_id = $2 AND sink = $3 AND holder = $4",
    )
    .bind(key.org)
    .bind(key.conversation)
    .bind(key.sink)
    .bind(holder)
    .bind(ids)
    .bind(content_hash)
    .bind(now_ms)
    .execute(conn)
    .await
    .op("recording a delivery")?
    .rows_affected();
    Ok(n == 1)
}

/// Deletes the row inside the caller's transaction: a write that ended after its person's
/// erasure hands its ids to the erasure, and no record of them stays.
pub async fn forget(conn: &mut Conn, key: &Key<'_>) -> Result<()> {
    sqlx::query("DELETE FROM deliveries WHERE org_id = $1 AND conversation_id = $2 AND sink = $3")
        .bind(key.org)
        .bind(key.conversation)
        .bind(key.sink)
        .execute(conn)
        .await
        .op("forgetting a delivery")?;
    Ok(())
}

/// Releases the hold without a result; `error` is kept, and with `failed` the row says so.
pub async fn release(
    store: &Store,
    key: &Key<'_>,
    holder: i64,
    error: Option<&str>,
    failed: bool,
    now_ms: i64,
) -> Result<()> {
    let mut conn = store.acquire().await?;
    sqlx::query(
        "UPDATE deliveries SET holder = NULL, held_until = NULL, last_error = COALESCE($5, last_error), \
         state = CASE WHEN $6 THEN 'failed' ELSE state END, updated_at = $7 \
         WHERE org_id = $1 AND conversation_id = $2 AND sink = $3 AND holder = $4",
    )
    .bind(key.org)
    .bind(key.conversation)
    .bind(key.sink)
    .bind(holder)
    .bind(error)
    .bind(failed)
    .bind(now_ms)
    .execute(&mut *conn)
    .await
    .op("releasing a delivery")?;
    Ok(())
}

/// Rows of a sink (all sinks when `None`), newest change first.
pub async fn list(store: &Store, sink: Option<&str>, limit: i64) -> Result<Vec<Delivery>> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM deliveries WHERE ($1 IS NULL OR sink = $1) \
         ORDER BY updated_at DESC, conversation_id LIMIT $2"
    );
    let rows: Vec<RowTuple> = sqlx::query_as(SQL)
        .bind(sink)
        .bind(limit)
        .fetch_all(store.pool())
        .await
        .op("listing deliveries")?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// The rows of one conversation, one per sink.
pub async fn for_conversation(store: &Store, org: i64, conversation: i64) -> Result<Vec<Delivery>> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM deliveries WHERE org_id = $1 AND conversation_id = $2 ORDER BY sink"
    );
    let rows: Vec<RowTuple> = sqlx::query_as(SQL)
        .bind(org)
        .bind(conversation)
        .fetch_all(store.pool())
        .await
        .op("reading a conversation's deliveries")?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// Rows per (sink, state), from the `(sink, state)` index alone.
pub async fn counts(store: &Store) -> Result<Vec<(String, String, i64)>> {
    sqlx::query_as(
        "SELECT sink, state, COUNT(*) FROM deliveries GROUP BY sink, state ORDER BY sink, state",
    )
    .fetch_all(store.pool())
    .await
    .op("counting deliveries")
}

/// The sinks that hold (or are writing) a delivery row of the conversation.
pub async fn sinks_of(conn: &mut crate::Conn, org: i64, conversation: i64) -> Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT sink FROM deliveries WHERE org_id = $1 AND conversation_id = $2 ORDER BY sink",
    )
    .bind(org)
    .bind(conversation)
    .fetch_all(&mut *conn)
    .await
    .op("listing a conversation's sinks")
}
