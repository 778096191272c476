//! Redaction of stored webhook events and job arguments that mention an erased person: the
//! row stays (its id, type, de-duplication key, state), its data goes. A candidate is found
//! with `LIKE` on the JSON text (cheap, a superset) and confirmed by [`mentions`] on the
//! parsed JSON.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};

use crate::{Conn, Op, Result};

/// Who is being erased, as their data mentions them.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    /// The normalized email.
    pub email: String,
    /// Their Drift contact ids.
    pub contacts: HashSet<i64>,
    /// Their conversations.
    pub conversations: HashSet<i64>,
}

/// Whether a JSON document mentions the subject: a text containing the email, a
/// `conversationId`/`contactId`/`endUserId`/`schedulerId` (either spelling) of theirs, a contact object
/// (`attributes`, or `type: "contact"`) with their id, or a conversation object with theirs.
pub fn mentions(v: &Value, s: &Subject) -> bool {
    match v {
        Value::String(t) => !s.email.is_empty() && t.to_lowercase().contains(&s.email),
        Value::Array(a) => a.iter().any(|x| mentions(x, s)),
        Value::Object(o) => {
            for (k, x) in o {
                let Some(id) = x.as_i64() else { continue };
                let hit = match k.as_str() {
                    "conversationId" | "conversation_id" => s.conversations.contains(&id),
                    "contactId" | "contact_id" | "endUserId" | "end_user_id" | "schedulerId"
                    | "scheduler_id" => s.contacts.contains(&id),
                    _ => false,
                };
                if hit {
                    return true;
                }
            }
            if let Some(id) = o.get("id").and_then(Value::as_i64) {
                let contact_like = o.contains_key("attributes")
                    || o.get("type").and_then(Value::as_str) == Some("contact");
                let conversation_like = o.contains_key("contactId")
                    || o.contains_key("participants")
                    || o.contains_key("inboxId");
                if (contact_like && s.contacts.contains(&id))
                    || (conversation_like && s.conversations.contains(&id))
                {
                    return true;
                }
            }
            o.values().any(|x| mentions(x, s))
        }
        _ => false,
    }
}

/// `LIKE` patterns (on the lower-cased JSON text) that every mention matches.
fn patterns(s: &Subject) -> Vec<String> {
    let mut out = Vec::new();
    if !s.email.is_empty() {
        out.push(format!("%{}%", s.email));
    }
    out.extend(
        s.contacts
            .iter()
            .chain(s.conversations.iter())
            .map(|id| format!("%:{id}%")),
    );
    out
}

/// Patterns per statement.
const PATTERNS: usize = 200;

/// Rows of `table` (`events` or `jobs`) of `org` whose `column` text matches a pattern.
async fn candidates(
    conn: &mut Conn,
    table: &str,
    column: &str,
    extra: &str,
    org: i64,
    s: &Subject,
) -> Result<BTreeMap<i64, (String, String)>> {
    let mut out = BTreeMap::new();
    for chunk in patterns(s).chunks(PATTERNS) {
        let ors = (0..chunk.len())
            .map(|i| format!("LOWER({column}) LIKE ${}", i + 2))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql =
            format!("SELECT id, {extra}, {column} FROM {table} WHERE org_id = $1 AND ({ors})");
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org);
        for p in chunk {
            q = q.bind(p.as_str());
        }
        let rows: Vec<(i64, String, String)> = q
            .fetch_all(&mut *conn)
            .await
            .op("finding stored data that mentions a person")?;
        out.extend(rows.into_iter().map(|(id, x, text)| (id, (x, text))));
    }
    Ok(out)
}

/// Redacts the org's stored events that mention the subject; answers how many.
pub(super) async fn events(conn: &mut Conn, org: i64, s: &Subject, erasure: i64) -> Result<i64> {
    let mut n = 0;
    for (id, (event_type, payload)) in
        candidates(conn, "events", "payload", "event_type", org, s).await?
    {
        let hit = serde_json::from_str::<Value>(&payload).map_or(true, |v| mentions(&v, s));
        if !hit {
            continue;
        }
        let redacted = json!({"type": event_type, "orgId": org, "redacted": {"erasure": erasure}});
        sqlx::query("UPDATE events SET payload = $2, parse_error = NULL WHERE id = $1")
            .bind(id)
            .bind(redacted.to_string())
            .execute(&mut *conn)
            .await
            .op("redacting an event")?;
        n += 1;
    }
    Ok(n)
}

/// Redacts the arguments of the org's jobs that mention the subject; a queued one is
/// cancelled (a running one finds its arguments erased when it next runs, and ends).
pub(super) async fn jobs(conn: &mut Conn, org: i64, s: &Subject, erasure: i64) -> Result<i64> {
    let mut n = 0;
    for (id, (state, args)) in candidates(conn, "jobs", "args", "state", org, s).await? {
        let hit = serde_json::from_str::<Value>(&args).map_or(true, |v| mentions(&v, s));
        if !hit {
            continue;
        }
        let (state, error) = if state == "queued" {
            (
                "cancelled".to_owned(),
                Some(format!("erased by erasure {erasure}")),
            )
        } else {
            (state, None)
        };
        let finished = (state == "cancelled").then(drift_types::now_ms);
        sqlx::query(
            "UPDATE jobs SET args = $2, state = $3, last_error = $4, \
             finished_at = COALESCE(finished_at, $5) WHERE id = $1",
        )
        .bind(id)
        .bind(json!({"erased": erasure}).to_string())
        .bind(state)
        .bind(error)
        .bind(finished)
        .execute(&mut *conn)
        .await
        .op("redacting a job")?;
        n += 1;
    }
    Ok(n)
}

/// A job whose rows the tombstones dropped forgets what it carried: its arguments, and the
/// stored event that made it (a `new_message` after an erasure holds the message), keeping
/// their ids, type and de-duplication key.
pub async fn forget_job_data(conn: &mut Conn, job_id: i64, event_id: Option<i64>) -> Result<()> {
    sqlx::query("UPDATE jobs SET args = $2 WHERE id = $1")
        .bind(job_id)
        .bind(serde_json::json!({"erased": "tombstone"}).to_string())
        .execute(&mut *conn)
        .await
        .op("redacting a job")?;
    if let Some(id) = event_id {
        sqlx::query(
            "UPDATE events SET payload = '{\"redacted\":{\"erasure\":\"tombstone\"}}', \
             parse_error = NULL WHERE id = $1",
        )
        .bind(id)
        .execute(&mut *conn)
        .await
        .op("redacting an event")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> Subject {
        Subject {
            email: "ada@example.com".into(),
            contacts: [7].into(),
            conversations: [70].into(),
        }
    }

    #[test]
    fn mentions_find_the_email_and_the_ids_in_every_shape_events_and_jobs_take() {
        let s = subject();
        for yes in [
            json!({"data": {"email": "Ada@Example.com", "requestedAt": 1}}),
            json!({"data": {"id": 7, "attributes": {"name": "Ada"}}}),
            json!({"data": {"conversationId": 70, "body": "hi"}}),
            json!({"data": {"endUserId": 7, "diff": []}}),
            json!({"conversation_id": 70, "event": "conversation_push"}),
            json!({"contact_id": 7}),
            json!({"data": {"schedulerId": 7, "slotStart": 1}}),
            json!({"meeting": {"scheduler_id": 7}}),
            json!({"message": {"author": {"type": "contact", "id": 7}, "conversationId": 1}}),
            json!({"bundle": {"conversation": {"id": 70, "contactId": 1}}}),
            json!({"data": {"body": "write to ada@example.com please"}}),
        ] {
            assert!(mentions(&yes, &s), "{yes}");
        }
        for no in [
            json!({"data": {"conversationId": 700, "body": "hi"}}),
            json!({"data": {"id": 7, "availability": "ONLINE"}}),
            json!({"user_id": 7}),
            json!({"data": {"email": "bob@example.com"}}),
            json!({"message": {"author": {"type": "user", "id": 7}, "conversationId": 1}}),
        ] {
            assert!(!mentions(&no, &s), "{no}");
        }
    }
}
