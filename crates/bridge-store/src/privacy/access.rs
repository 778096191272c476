//! Subject access: every row the store holds about one person, as JSON (`driftbridge gdpr
//! export`). It follows the same links an erasure follows (`erase.rs`), so what it shows is
//! what an erasure would remove.

use serde_json::{Map, Value, json};

use super::erase::{CHUNK, in_list, with_email};
use super::key::normalize_email;
use crate::tables::{TABLES, Table};
use crate::{Conn, Op, Result};

async fn rows_where(
    conn: &mut Conn,
    t: &Table,
    org: i64,
    col: &str,
    ids: &[i64],
) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let names = t.select_list(crate::Backend::of(conn));
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT {names} FROM {} WHERE org_id = $1 AND {col} IN ({})",
            t.name,
            in_list(chunk.len(), 2)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(org);
        for id in chunk {
            q = q.bind(*id);
        }
        for row in q
            .fetch_all(&mut *conn)
            .await
            .op("reading a person's rows")?
        {
            let mut m = Map::new();
            for (i, c) in t.columns.iter().enumerate() {
                m.insert(c.name.to_owned(), c.cell(&row, i).to_json());
            }
            out.push(Value::Object(m));
        }
    }
    Ok(out)
}

fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// Everything held about `email` in `org`: contacts, users, conversations with their
/// messages, buttons, transcripts, participants, tags and meetings, the meetings they booked
/// from a calendar page, goal rows, the delivery and signal records (with the CRM ids each
/// sink gave), and when they opted out of emails.
pub async fn held_about(conn: &mut Conn, org: i64, email: &str) -> Result<Value> {
    let email = normalize_email(email);
    let contacts = with_email(conn, "contacts", org, &email).await?;
    let users = with_email(conn, "users", org, &email).await?;
    let mut out = Map::new();
    let mut put = |name: &str, rows: Vec<Value>| {
        out.insert(name.to_owned(), Value::Array(rows));
    };
    let (Some(ct), Some(us), Some(cv), Some(ms)) = (
        table("contacts"),
        table("users"),
        table("conversations"),
        table("messages"),
    ) else {
        return Ok(Value::Null);
    };
    put(
        "contacts",
        rows_where(conn, ct, org, "id", &contacts).await?,
    );
    put("users", rows_where(conn, us, org, "id", &users).await?);
    let mut conversations: Vec<i64> = rows_where(conn, cv, org, "contact_id", &contacts)
        .await?
        .iter()
        .filter_map(|r| r["id"].as_i64())
        .collect();
    let authored = rows_where(conn, ms, org, "author_id", &contacts).await?;
    conversations.extend(
        authored
            .iter()
            .filter(|m| m["author_type"] == "contact")
            .filter_map(|m| m["conversation_id"].as_i64()),
    );
    conversations.sort_unstable();
    conversations.dedup();
    put(
        "conversations",
        rows_where(conn, cv, org, "id", &conversations).await?,
    );
    let messages = rows_where(conn, ms, org, "conversation_id", &conversations).await?;
    let message_ids: Vec<i64> = messages.iter().filter_map(|m| m["id"].as_i64()).collect();
    put("messages", messages);
    if let Some(t) = table("message_buttons") {
        put(
            "message_buttons",
            rows_where(conn, t, org, "message_id", &message_ids).await?,
        );
    }
    if let Some(t) = table("contact_tags") {
        put(
            "contact_tags",
            rows_where(conn, t, org, "contact_id", &contacts).await?,
        );
    }
    for name in [
        "attachments",
        "transcripts",
        "conversation_participants",
        "conversation_tags",
        "meetings",
        "conversation_facts",
    ] {
        if let Some(t) = table(name) {
            let mut rows = rows_where(conn, t, org, "conversation_id", &conversations).await?;
            if name == "meetings" {
                // Booked from a calendar page: no conversation, the person is the scheduler.
                let scheduled = rows_where(conn, t, org, "scheduler_id", &contacts).await?;
                rows.extend(
                    scheduled
                        .into_iter()
                        .filter(|m| m["conversation_id"].is_null()),
                );
            }
            put(name, rows);
        }
    }
    let mut goals = Vec::new();
    let mut deliveries = Vec::new();
    for c in &conversations {
        let g: Vec<(i64, String, Option<String>, Option<i64>)> = sqlx::query_as(
            "SELECT playbook_id, goal_id, goal_name, contact_id FROM playbook_goals_met \
             WHERE org_id = $1 AND conversation_id = $2",
        )
        .bind(org)
        .bind(*c)
        .fetch_all(&mut *conn)
        .await
        .op("reading a person's goals")?;
        goals.extend(g.into_iter().map(|(p, id, name, contact)| {
            json!({"conversation_id": c, "playbook_id": p, "goal_id": id, "goal_name": name,
                   "contact_id": contact})
        }));
        let d: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT sink, state, external_ids, deliveries, updated_at FROM deliveries \
             WHERE org_id = $1 AND conversation_id = $2 ORDER BY sink",
        )
        .bind(org)
        .bind(*c)
        .fetch_all(&mut *conn)
        .await
        .op("reading a person's deliveries")?;
        deliveries.extend(d.into_iter().map(|(sink, state, ids, n, at)| {
            json!({"conversation_id": c, "sink": sink, "state": state,
                   "external_ids": serde_json::from_str::<Value>(&ids).unwrap_or(Value::Null),
                   "deliveries": n, "updated_at": at})
        }));
    }
    put("playbook_goals_met", goals);
    put("deliveries", deliveries);
    let mut signals = Vec::new();
    for c in &contacts {
        let r: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT sink, external_ids, updated_at FROM signal_records \
             WHERE org_id = $1 AND contact_id = $2 ORDER BY sink",
        )
        .bind(org)
        .bind(*c)
        .fetch_all(&mut *conn)
        .await
        .op("reading a person's signal records")?;
        signals.extend(r.into_iter().map(|(sink, ids, at)| {
            json!({"contact_id": c, "sink": sink,
                   "external_ids": serde_json::from_str::<Value>(&ids).unwrap_or(Value::Null),
                   "updated_at": at})
        }));
    }
    put("signal_records", signals);
    let opted_out = super::opt_out::opted_out_at(conn, org, &email).await?;
    put(
        "opt_outs",
        opted_out
            .map(|at| json!({ "opted_out_at": at }))
            .into_iter()
            .collect(),
    );
    Ok(Value::Object(out))
}
