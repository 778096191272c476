//! Meetings as the CRM pipeline reads them: those booked in a conversation (its delivery
//! carries them), one by its key (one booked from a calendar page), and the version a stored
//! meeting is at (an older event does not replace a newer one).

use crate::tables::sql::ms;
use crate::{Conn, Op, Result};

/// A stored meeting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredMeeting {
    /// The key (`eventId`, else `agentId:slotStart`).
    pub key: String,
    /// Drift's status (`ACTIVE`), or `CANCELED` / `RESCHEDULED` after a `meeting_updated`.
    pub status: Option<String>,
    /// Start, epoch ms.
    pub slot_start: Option<i64>,
    /// End, epoch ms.
    pub slot_end: Option<i64>,
    /// When it was booked.
    pub scheduled_at: Option<i64>,
    /// The agent.
    pub agent_id: Option<i64>,
    /// Drift's meeting type.
    pub meeting_type: Option<String>,
    /// The visitor's time zone.
    pub time_zone: Option<String>,
    /// Notes.
    pub notes: Option<String>,
}

type Row = (
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
);

const COLUMNS: &str = "meeting_key, status, {start}, {end}, {at}, agent_id, meeting_type, \
     end_user_time_zone, meeting_notes";

/// The select list of [`StoredMeeting`], with the instants as epoch ms on either backend.
fn columns(b: crate::Backend) -> String {
    COLUMNS
        .replace("{start}", &ms(b, "slot_start"))
        .replace("{end}", &ms(b, "slot_end"))
        .replace("{at}", &ms(b, "scheduled_at"))
}

fn stored(r: Row) -> StoredMeeting {
    StoredMeeting {
        key: r.0,
        status: r.1,
        slot_start: r.2,
        slot_end: r.3,
        scheduled_at: r.4,
        agent_id: r.5,
        meeting_type: r.6,
        time_zone: r.7,
        notes: r.8,
    }
}

/// The meetings booked in the org's conversation, by booking time.
pub async fn of_conversation(
    conn: &mut Conn,
    org: i64,
    conversation: i64,
) -> Result<Vec<StoredMeeting>> {
    let b = crate::Backend::of(conn);
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM meetings WHERE org_id = $1 AND conversation_id = $2 \
         ORDER BY scheduled_at, meeting_key",
        columns(b)
    )))
    .bind(org)
    .bind(conversation)
    .fetch_all(&mut *conn)
    .await
    .op("reading a conversation's meetings")?;
    Ok(rows.into_iter().map(stored).collect())
}

/// The org's meeting `key` as stored now (a meeting booked from a calendar page is read at
/// its delivery, so the CRMs get its newest state whatever order its events ran in).
pub async fn get(conn: &mut Conn, org: i64, key: &str) -> Result<Option<StoredMeeting>> {
    let b = crate::Backend::of(conn);
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM meetings WHERE org_id = $1 AND meeting_key = $2",
        columns(b)
    )))
    .bind(org)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await
    .op("reading a meeting")?;
    Ok(row.map(stored))
}

/// The stored `updated_at` of the org's meeting `key`: `None` when there is no such row,
/// `Some(None)` when it has no time.
pub async fn version(conn: &mut Conn, org: i64, key: &str) -> Result<Option<Option<i64>>> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM meetings WHERE org_id = $1 AND meeting_key = $2",
        ms(crate::Backend::of(conn), "updated_at")
    )))
    .bind(org)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await
    .op("reading a meeting's version")
}
