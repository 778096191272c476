//! Stored webhook events, found by type, org, conversation and time, newest first, without
//! their payloads (one event's payload is read on its own).

use crate::filter::Where;
use crate::{Op, Result, Store};

/// What to look for; `None` is any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// The `type` as delivered.
    pub event_type: Option<String>,
    /// Org.
    pub org: Option<i64>,
    /// The conversation its data names (events stored before migration 10 have none).
    pub conversation: Option<i64>,
    /// Received at or after (epoch ms).
    pub since: Option<i64>,
    /// Received before (epoch ms).
    pub until: Option<i64>,
    /// Only ids below this one (the next page).
    pub before_id: Option<i64>,
}

/// One event in a listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EventRow {
    /// Row id.
    pub id: i64,
    /// Org.
    pub org_id: Option<i64>,
    /// The `type`.
    pub event_type: String,
    /// The conversation its data names.
    pub conversation_id: Option<i64>,
    /// Accepted at (epoch ms).
    pub received_at: i64,
    /// Why its data did not parse, if it did not.
    pub parse_error: Option<String>,
}

/// Events matching `f`, newest first, at most `limit`.
pub async fn search(store: &Store, f: &EventFilter, limit: i64) -> Result<Vec<EventRow>> {
    // With a conversation, its index (conversation_id, id) is the one to read: `+org_id`
    // keeps SQLite, which has no statistics to tell, from walking the org's (org_id, id)
    // index instead (unary plus is a no-op to PostgreSQL, which picks by its statistics).
    let org_column = if f.conversation.is_some() {
        "+org_id"
    } else {
        "org_id"
    };
    let mut w = Where::new();
    w.text("event_type", f.event_type.as_deref())
        .int(org_column, "=", f.org)
        .int("conversation_id", "=", f.conversation)
        .int("received_at", ">=", f.since)
        .int("received_at", "<", f.until)
        .int("id", "<", f.before_id);
    let sql = format!(
        "SELECT id, org_id, event_type, conversation_id, received_at, parse_error FROM events{} \
         ORDER BY id DESC LIMIT ${}",
        w.sql(),
        w.after()
    );
    type Row = (i64, Option<i64>, String, Option<i64>, i64, Option<String>);
    let rows: Vec<Row> = w
        .bind_as(sqlx::query_as(sqlx::AssertSqlSafe(sql)))
        .bind(limit)
        .fetch_all(store.pool())
        .await
        .op("searching events")?;
    Ok(rows
        .into_iter()
        .map(
            |(id, org_id, event_type, conversation_id, received_at, parse_error)| EventRow {
                id,
                org_id,
                event_type,
                conversation_id,
                received_at,
                parse_error,
            },
        )
        .collect())
}

/// The distinct event types stored (for the console's type filter).
pub async fn types(store: &Store) -> Result<Vec<String>> {
    // One index seek per type (a loose index scan), not a read of every event.
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let next: Option<String> = sqlx::query_scalar(
            "SELECT event_type FROM events WHERE event_type > $1 ORDER BY event_type LIMIT 1",
        )
        .bind(&after)
        .fetch_optional(store.pool())
        .await
        .op("listing event types")?;
        match next {
            Some(t) if out.len() < 200 => {
                after.clone_from(&t);
                out.push(t);
            }
            _ => return Ok(out),
        }
    }
}
