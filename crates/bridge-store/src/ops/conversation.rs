//! One conversation as the console shows it: its row, its contact, its messages in order.

use crate::tables::ColumnType;
use crate::tables::sql::{at as at_ms, ms, read_expr};
use crate::{Op, Result, Store};

/// The stored conversation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Conversation {
    /// Org.
    pub org_id: i64,
    /// Id.
    pub id: i64,
    /// `open`, `closed`, `pending`, ...
    pub status: String,
    /// Its contact.
    pub contact_id: Option<i64>,
    /// The contact's email and name, when the contact is stored.
    pub contact_email: Option<String>,
    /// The contact's name.
    pub contact_name: Option<String>,
    /// Inbox.
    pub inbox_id: Option<i64>,
    /// The playbook that started it.
    pub playbook_id: Option<i64>,
    /// Created (epoch ms).
    pub created_at: Option<i64>,
    /// Updated (epoch ms).
    pub updated_at: Option<i64>,
    /// Last synced (epoch ms).
    pub synced_at: i64,
}

/// One message of the transcript.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Message {
    /// Id.
    pub id: i64,
    /// Sent (epoch ms).
    pub created_at: i64,
    /// `contact` or `user`.
    pub author_type: String,
    /// The author's id.
    pub author_id: i64,
    /// A bot wrote it.
    pub bot: bool,
    /// `chat`, `private_note`, ...
    pub kind: String,
    /// The text (none for some kinds, or after retention removed it).
    pub body: Option<String>,
}

/// The conversation, when stored.
pub async fn get(store: &Store, org: i64, id: i64) -> Result<Option<Conversation>> {
    type Row = (
        i64,
        i64,
        String,
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        i64,
    );
    let b = store.backend();
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT c.org_id, c.id, c.status, c.contact_id, k.email, k.name, c.inbox_id, \
         c.related_playbook_id, {}, {}, COALESCE({}, 0) FROM conversations c \
         LEFT JOIN contacts k ON k.org_id = c.org_id AND k.id = c.contact_id \
         WHERE c.org_id = $1 AND c.id = $2",
        ms(b, "c.created_at"),
        ms(b, "c.updated_at"),
        ms(b, "c._synced_at"),
    )))
    .bind(org)
    .bind(id)
    .fetch_optional(store.pool())
    .await
    .op("reading a conversation")?;
    Ok(row.map(|r| Conversation {
        org_id: r.0,
        id: r.1,
        status: r.2,
        contact_id: r.3,
        contact_email: r.4,
        contact_name: r.5,
        inbox_id: r.6,
        playbook_id: r.7,
        created_at: r.8,
        updated_at: r.9,
        synced_at: r.10,
    }))
}

/// Its messages, oldest first, at most `limit`.
pub async fn messages(store: &Store, org: i64, id: i64, limit: i64) -> Result<Vec<Message>> {
    type Row = (i64, i64, String, i64, i64, String, Option<String>);
    let b = store.backend();
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, {}, author_type, author_id, {}, type, body FROM messages \
         WHERE org_id = $1 AND conversation_id = $2 ORDER BY created_at, id LIMIT $3",
        ms(b, "created_at"),
        read_expr(b, ColumnType::Bool, "author_bot"),
    )))
    .bind(org)
    .bind(id)
    .bind(limit)
    .fetch_all(store.pool())
    .await
    .op("reading a conversation's messages")?;
    Ok(rows
        .into_iter()
        .map(|r| Message {
            id: r.0,
            created_at: r.1,
            author_type: r.2,
            author_id: r.3,
            bot: r.4 != 0,
            kind: r.5,
            body: r.6,
        })
        .collect())
}

/// The objects whose deletion in Drift is captured (`_deleted_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletable {
    /// Conversations.
    Conversations,
    /// Contacts.
    Contacts,
}

/// Marks the org's stored rows with these ids as gone from Drift at `at`, unless already
/// marked; answers how many it marked. A later fetch that finds one writes it back present.
pub async fn mark_deleted(
    conn: &mut crate::Conn,
    what: Deletable,
    org: i64,
    ids: &[i64],
    at: i64,
) -> Result<u64> {
    let table = match what {
        Deletable::Conversations => "conversations",
        Deletable::Contacts => "contacts",
    };
    let mut n = 0;
    for chunk in ids.chunks(crate::idlist::PER_STATEMENT) {
        let list = crate::idlist::literal(chunk);
        // The table is one of two constants and the list holds integers only.
        n += sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET _deleted_at = {} WHERE org_id = $1 AND id IN ({list}) \
             AND _deleted_at IS NULL",
            at_ms(crate::Backend::of(conn), "$2")
        )))
        .bind(org)
        .bind(at)
        .execute(&mut *conn)
        .await
        .op("marking rows deleted in Drift")?
        .rows_affected();
    }
    Ok(n)
}
