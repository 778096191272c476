//! Received webhook events: stored once per de-duplication key, never with their token.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{Conn, Op, Result};

/// A stored event.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// Row id.
    pub id: i64,
    /// Org that sent it, when the envelope said.
    pub org_id: Option<i64>,
    /// The `type` as delivered.
    pub event_type: String,
    /// The envelope without its `token`.
    pub payload: Value,
    /// When it was accepted (epoch ms).
    pub received_at: i64,
}

/// The de-duplication key: SHA-256 over type, org and the canonical JSON of `data` (object
/// keys sorted at every depth, no whitespace), hex encoded. A re-delivery of the same event
/// has the same key however its keys were ordered.
pub fn dedup_key(event_type: &str, org_id: Option<i64>, data: &Value) -> String {
    let mut h = Sha256::new();
    h.update(event_type.as_bytes());
    h.update([0]);
    h.update(org_id.map(|o| o.to_string()).unwrap_or_default().as_bytes());
    h.update([0]);
    let mut canon = String::new();
    canonical(data, &mut canon);
    h.update(canon.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Inserts the event unless its key is already stored. Returns the new row id, or `None`
/// for a duplicate.
pub async fn insert(
    conn: &mut Conn,
    dedup_key: &str,
    org_id: Option<i64>,
    event_type: &str,
    payload: &Value,
    now_ms: i64,
) -> Result<Option<i64>> {
    sqlx::query_scalar(
        "INSERT INTO events (dedup_key, org_id, event_type, payload, received_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
    )
    .bind(dedup_key)
    .bind(org_id)
    .bind(event_type)
    .bind(payload.to_string())
    .bind(now_ms)
    .fetch_optional(conn)
    .await
    .op("storing an event")
}

/// One event for [`insert_many`].
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    /// De-duplication key.
    pub dedup_key: &'a str,
    /// Org, when the envelope said.
    pub org_id: Option<i64>,
    /// The `type` as delivered.
    pub event_type: &'a str,
    /// The envelope without its `token`, as JSON text.
    pub payload: &'a str,
    /// Why its data did not parse, if it did not.
    pub parse_error: Option<&'a str>,
    /// The conversation it is about, when its data names one (the console finds events by it).
    pub conversation_id: Option<i64>,
}

/// Rows per multi-row statement: 7 parameters each stays far below SQLite's 32,766 and
/// PostgreSQL's 65,535 bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

/// Inserts the events whose keys are not stored yet, with one multi-row statement per 500;
/// answers, in order, each one's new row id or `None` for a duplicate (of a stored event or
/// of an earlier one in `rows`).
pub async fn insert_many(
    conn: &mut Conn,
    rows: &[NewEvent<'_>],
    now_ms: i64,
) -> Result<Vec<Option<i64>>> {
    let mut ids: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    let mut seen = std::collections::HashSet::new();
    let mut firsts: Vec<&NewEvent<'_>> = rows.iter().filter(|r| seen.insert(r.dedup_key)).collect();
    // In key order, whatever order they arrived in: on PostgreSQL an insert whose key another
    // open transaction has just inserted waits for it, so two processes storing the same
    // webhooks (Drift retried one at the other) in opposite orders would each wait on the
    // other, a deadlock PostgreSQL breaks by failing one batch. In one order, one waits for
    // the other's commit and finds its keys stored.
    firsts.sort_unstable_by_key(|r| r.dedup_key);
    for chunk in firsts.chunks(ROWS_PER_STATEMENT) {
        let mut sql = String::from(
            "INSERT INTO events (dedup_key, org_id, event_type, payload, received_at, \
             parse_error, conversation_id) VALUES ",
        );
        sql.push_str(&crate::warehouse::placeholders(chunk.len(), 7, 1));
        sql.push_str(" ON CONFLICT (dedup_key) DO NOTHING RETURNING id, dedup_key");
        let mut q = sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            q = q
                .bind(r.dedup_key)
                .bind(r.org_id)
                .bind(r.event_type)
                .bind(r.payload)
                .bind(now_ms)
                .bind(r.parse_error)
                .bind(r.conversation_id);
        }
        // RETURNING gives no order: the key says which row each id is.
        ids.extend(
            q.fetch_all(&mut *conn)
                .await
                .op("storing events")?
                .into_iter()
                .map(|(id, key)| (key, id)),
        );
    }
    // The first row with a key gets its id; later rows with the same key are duplicates.
    let mut given = std::collections::HashSet::new();
    Ok(rows
        .iter()
        .map(|r| {
            ids.get(r.dedup_key)
                .copied()
                .filter(|_| given.insert(r.dedup_key))
        })
        .collect())
}

/// Records why an event's data did not parse (it was stored with no job).
pub async fn set_parse_error(conn: &mut Conn, id: i64, error: Option<&str>) -> Result<()> {
    sqlx::query("UPDATE events SET parse_error = $2 WHERE id = $1")
        .bind(id)
        .bind(error)
        .execute(conn)
        .await
        .op("recording an event's parse error")?;
    Ok(())
}

/// An event stored with data that did not parse.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MalformedEvent {
    /// Row id (`driftbridge replay --event ID`).
    pub id: i64,
    /// Org, when the envelope said.
    pub org_id: Option<i64>,
    /// The `type`.
    pub event_type: String,
    /// What the parser said.
    pub error: String,
    /// When it was accepted (epoch ms).
    pub received_at: i64,
}

/// Events stored with data that did not parse, newest first.
pub async fn malformed(conn: &mut Conn, limit: i64) -> Result<Vec<MalformedEvent>> {
    let rows: Vec<(i64, Option<i64>, String, String, i64)> = sqlx::query_as(
        "SELECT id, org_id, event_type, parse_error, received_at FROM events \
         WHERE parse_error IS NOT NULL ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
    .op("listing malformed events")?;
    Ok(rows
        .into_iter()
        .map(
            |(id, org_id, event_type, error, received_at)| MalformedEvent {
                id,
                org_id,
                event_type,
                error,
                received_at,
            },
        )
        .collect())
}

/// How many of the org's events arrived at or after `since_ms` (the events a disconnected
/// tenant's jobs skipped).
pub async fn count_for_org_since(conn: &mut Conn, org_id: i64, since_ms: i64) -> Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE org_id = $1 AND received_at >= $2")
        .bind(org_id)
        .bind(since_ms)
        .fetch_one(conn)
        .await
        .op("counting an org's events")
}

/// The org's events that arrived at or after `since_ms`, `limit` at a time in id order,
/// starting after `after_id`.
pub async fn for_org_since(
    conn: &mut Conn,
    org_id: i64,
    since_ms: i64,
    after_id: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>> {
    let rows: Vec<(i64, Option<i64>, String, String, i64)> = sqlx::query_as(
        "SELECT id, org_id, event_type, payload, received_at FROM events \
         WHERE org_id = $1 AND received_at >= $2 AND id > $3 ORDER BY id LIMIT $4",
    )
    .bind(org_id)
    .bind(since_ms)
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await
    .op("reading an org's events")?;
    rows.into_iter().map(stored).collect()
}

fn stored(
    (id, org_id, event_type, payload, received_at): (i64, Option<i64>, String, String, i64),
) -> Result<StoredEvent> {
    Ok(StoredEvent {
        id,
        org_id,
        event_type,
        payload: serde_json::from_str(&payload).map_err(|source| crate::Error::Corrupt {
            what: "event payload",
            source,
        })?,
        received_at,
    })
}

/// One stored event by id.
pub async fn get(conn: &mut Conn, id: i64) -> Result<Option<StoredEvent>> {
    let row: Option<(i64, Option<i64>, String, String, i64)> = sqlx::query_as(
        "SELECT id, org_id, event_type, payload, received_at FROM events WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
    .op("reading an event")?;
    row.map(stored).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_key_ignores_key_order_but_not_values() {
        let a = json!({"a": 1, "b": {"x": [1, 2], "y": "z"}});
        let b: Value = serde_json::from_str(r#"{"b":{"y":"z","x":[1,2]},"a":1}"#).unwrap();
        assert_eq!(dedup_key("t", Some(1), &a), dedup_key("t", Some(1), &b));
        assert_ne!(dedup_key("t", Some(1), &a), dedup_key("t", Some(2), &a));
        assert_ne!(dedup_key("t", Some(1), &a), dedup_key("u", Some(1), &a));
        let c = json!({"a": 1, "b": {"x": [2, 1], "y": "z"}});
        assert_ne!(dedup_key("t", Some(1), &a), dedup_key("t", Some(1), &c));
        assert_eq!(dedup_key("t", None, &a).len(), 64);
    }
}
