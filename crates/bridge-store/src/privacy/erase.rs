//! One person's erasure from one org's rows, inside the caller's transaction: their contacts
//! (and users) by email, every conversation that is theirs with its messages, buttons,
//! transcript, participants, tags, meetings and goal rows, the delivery records of those
//! conversations and what lead signals about their contacts wrote (returned, so the sinks
//! can be told), then the redaction of stored events and job arguments that mention them,
//! and the tombstones.

use std::collections::{BTreeMap, BTreeSet};

use super::key::{SubjectKey, erasure_lock, normalize_email};
use super::redact;
use crate::{Conn, Op, Result};

/// A delivery record of an erased conversation, or what a lead signal about an erased
/// contact wrote: the sink and the ids it made.
#[derive(Debug, Clone, PartialEq)]
pub struct ErasedDelivery {
    /// Sink name.
    pub sink: String,
    /// The conversation; 0 for a lead signal's records.
    pub conversation_id: i64,
    /// The CRM's ids by role (`contact`, `note`, `lead`, `task`, `meeting:KEY`, ...).
    pub external_ids: BTreeMap<String, String>,
}

/// What one org's erasure removed.
#[derive(Debug, Clone, Default)]
pub struct Erased {
    /// The `erasures` row.
    pub erasure_id: i64,
    /// The org.
    pub org: i64,
    /// Drift contact ids that were the person's.
    pub contacts: Vec<i64>,
    /// Their conversations.
    pub conversations: Vec<i64>,
    /// Delivery records of those conversations (deleted from the store).
    pub deliveries: Vec<ErasedDelivery>,
    /// Rows removed or redacted, by table.
    pub summary: BTreeMap<String, i64>,
}

/// Ids per statement in `IN (...)` lists.
pub(super) const CHUNK: usize = 400;

/// `$first, $first+1, ...`: the `n` parameters of an `IN (...)` list.
pub(super) fn in_list(n: usize, first: usize) -> String {
    (0..n)
        .map(|i| format!("${}", first + i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `(sink, column's value, CRM ids)` of the rows of `table` (`deliveries` by conversation,
/// `signal_records` by contact) whose `column` is one of `ids`.
async fn sink_records(
    conn: &mut Conn,
    table: &str,
    column: &str,
    org: i64,
    ids: &[i64],
) -> Result<Vec<(String, i64, BTreeMap<String, String>)>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT sink, {column}, external_ids FROM {table} WHERE org_id = $1 \
             AND {column} IN ({}) ORDER BY sink, {column}",
            in_list(chunk.len(), 2)
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org);
        for id in chunk {
            q = q.bind(*id);
        }
        let rows: Vec<(String, i64, String)> = q
            .fetch_all(&mut *conn)
            .await
            .op("reading the CRM ids a person's records hold")?;
        out.extend(
            rows.into_iter()
                .map(|(sink, id, ext)| (sink, id, serde_json::from_str(&ext).unwrap_or_default())),
        );
    }
    Ok(out)
}

/// `SELECT {what} FROM ... WHERE org_id = $1 AND {col} IN (ids)` over chunks of `ids`.
async fn select_in(
    conn: &mut Conn,
    what_from: &str,
    col: &str,
    org: i64,
    ids: &[i64],
) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT {what_from} WHERE org_id = $1 AND {col} IN ({})",
            in_list(chunk.len(), 2)
        );
        let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).bind(org);
        for id in chunk {
            q = q.bind(*id);
        }
        out.extend(
            q.fetch_all(&mut *conn)
                .await
                .op("finding a person's rows")?,
        );
    }
    Ok(out)
}

/// `DELETE FROM {table} WHERE org_id = $1 AND {col} IN (ids)`; rows deleted.
async fn delete_in(conn: &mut Conn, table: &str, col: &str, org: i64, ids: &[i64]) -> Result<i64> {
    let mut n = 0;
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "DELETE FROM {table} WHERE org_id = $1 AND {col} IN ({})",
            in_list(chunk.len(), 2)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(org);
        for id in chunk {
            q = q.bind(*id);
        }
        n += q
            .execute(&mut *conn)
            .await
            .op("erasing a person's rows")?
            .rows_affected() as i64;
    }
    Ok(n)
}

/// The ids of `table`'s rows (`contacts` or `users`) in `org` with the normalized `email`.
pub(super) async fn with_email(
    conn: &mut Conn,
    table: &str,
    org: i64,
    email: &str,
) -> Result<Vec<i64>> {
    // `table` is one of two names from this module, never input.
    let sql = format!("SELECT id FROM {table} WHERE org_id = $1 AND LOWER(email) = $2");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(org)
        .bind(email)
        .fetch_all(conn)
        .await
        .op("finding a person's rows by email")
}

/// The orgs that hold a contact or user with this email, or have a tenant.
pub async fn subject_orgs(conn: &mut Conn, email: &str) -> Result<Vec<i64>> {
    let email = normalize_email(email);
    let orgs: Vec<i64> = sqlx::query_scalar(
        "SELECT org_id FROM contacts WHERE LOWER(email) = $1 UNION \
         SELECT org_id FROM users WHERE LOWER(email) = $1 UNION SELECT org_id FROM tenants",
    )
    .bind(&email)
    .fetch_all(conn)
    .await
    .op("finding the orgs that hold an email")?;
    let set: BTreeSet<i64> = orgs.into_iter().collect();
    Ok(set.into_iter().collect())
}

/// Erases the person with `email` from `org` inside the caller's transaction and records the
/// erasure (`source`: `webhook`, `cli`); see the module header for what it reaches.
pub async fn erase_org(
    conn: &mut Conn,
    key: &SubjectKey,
    org: i64,
    email: &str,
    source: &str,
    event_id: Option<i64>,
    requested_at: i64,
) -> Result<Erased> {
    erasure_lock(conn, true).await?;
    let email = normalize_email(email);
    let now = drift_types::now_ms();
    let erasure_id: i64 = sqlx::query_scalar(
        "INSERT INTO erasures (org_id, subject, source, event_id, requested_at, erased_at, summary) \
         VALUES ($1, $2, $3, $4, $5, $6, '{}') RETURNING id",
    )
    .bind(org)
    .bind(key.email(&email))
    .bind(source)
    .bind(event_id)
    .bind(requested_at)
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .op("recording an erasure")?;

    let contacts = with_email(conn, "contacts", org, &email).await?;
    let mut conversations: BTreeSet<i64> =
        select_in(conn, "id FROM conversations", "contact_id", org, &contacts)
            .await?
            .into_iter()
            .collect();
    // Conversations they wrote in, whoever the conversation's contact is.
    for chunk in contacts.chunks(CHUNK) {
        let sql = format!(
            "SELECT DISTINCT conversation_id FROM messages WHERE org_id = $1 \
             AND author_type = 'contact' AND author_id IN ({})",
            in_list(chunk.len(), 2)
        );
        let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(org);
        for id in chunk {
            q = q.bind(*id);
        }
        let found: Vec<i64> = q
            .fetch_all(&mut *conn)
            .await
            .op("finding a person's messages")?;
        conversations.extend(found);
    }
    let conversations: Vec<i64> = conversations.into_iter().collect();
    let messages = select_in(
        conn,
        "id FROM messages",
        "conversation_id",
        org,
        &conversations,
    )
    .await?;

    let mut deliveries: Vec<ErasedDelivery> =
        sink_records(conn, "deliveries", "conversation_id", org, &conversations)
            .await?
            .into_iter()
            .map(|(sink, conversation_id, external_ids)| ErasedDelivery {
                sink,
                conversation_id,
                external_ids,
            })
            .collect();
    deliveries.extend(
        sink_records(conn, "signal_records", "contact_id", org, &contacts)
            .await?
            .into_iter()
            .map(|(sink, _, external_ids)| ErasedDelivery {
                sink,
                conversation_id: 0,
                external_ids,
            }),
    );

    let mut summary = BTreeMap::new();
    let mut count = |table: &str, n: i64| {
        if n > 0 {
            *summary.entry(table.to_owned()).or_insert(0) += n;
        }
    };
    count(
        "message_buttons",
        delete_in(conn, "message_buttons", "message_id", org, &messages).await?,
    );
    for table in [
        "attachments",
        "messages",
        "transcripts",
        "conversation_participants",
        "conversation_tags",
        "meetings",
        "playbook_goals_met",
        "conversation_facts",
        "deliveries",
    ] {
        count(
            table,
            delete_in(conn, table, "conversation_id", org, &conversations).await?,
        );
    }
    count(
        "playbook_goals_met",
        delete_in(conn, "playbook_goals_met", "contact_id", org, &contacts).await?,
    );
    // A meeting booked from a calendar page has no conversation: its scheduler (a Drift
    // contact id; `booked_by` is not documented as one) is the person.
    count(
        "meetings",
        delete_in(conn, "meetings", "scheduler_id", org, &contacts).await?,
    );
    for (table, n) in crate::widget::erase(conn, org, &email, &conversations).await? {
        count(table, n);
    }
    count(
        "conversations",
        delete_in(conn, "conversations", "id", org, &conversations).await?,
    );
    count(
        "contact_tags",
        delete_in(conn, "contact_tags", "contact_id", org, &contacts).await?,
    );
    count(
        "signal_records",
        delete_in(conn, "signal_records", "contact_id", org, &contacts).await?,
    );
    count(
        "contacts",
        delete_in(conn, "contacts", "id", org, &contacts).await?,
    );
    let users = sqlx::query("DELETE FROM users WHERE org_id = $1 AND LOWER(email) = $2")
        .bind(org)
        .bind(&email)
        .execute(&mut *conn)
        .await
        .op("erasing a user")?
        .rows_affected();
    count("users", users as i64);
    count(
        "opt_outs",
        super::opt_out::forget(conn, key, org, &email).await? as i64,
    );

    let subject = redact::Subject {
        email: email.clone(),
        contacts: contacts.iter().copied().collect(),
        conversations: conversations.iter().copied().collect(),
    };
    count(
        "events_redacted",
        redact::events(conn, org, &subject, erasure_id).await?,
    );
    count(
        "jobs_redacted",
        redact::jobs(conn, org, &subject, erasure_id).await?,
    );

    let mut digests = vec![key.email(&email)];
    digests.extend(contacts.iter().map(|c| key.contact(*c)));
    digests.extend(conversations.iter().map(|c| key.conversation(*c)));
    for d in &digests {
        sqlx::query(
            "INSERT INTO tombstones (org_id, digest, erasure_id) VALUES ($1, $2, $3) \
             ON CONFLICT (org_id, digest) DO NOTHING",
        )
        .bind(org)
        .bind(d)
        .bind(erasure_id)
        .execute(&mut *conn)
        .await
        .op("recording a tombstone")?;
    }
    sqlx::query("UPDATE erasures SET summary = $2 WHERE id = $1")
        .bind(erasure_id)
        .bind(serde_json::to_string(&summary).unwrap_or_default())
        .execute(&mut *conn)
        .await
        .op("recording an erasure")?;
    Ok(Erased {
        erasure_id,
        org,
        contacts,
        conversations,
        deliveries,
        summary,
    })
}
