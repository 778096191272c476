//! The warehouse tables (docs/SCHEMA.md): every row keyed by (org id, Drift id) and upserted,
//! so writing the same object twice leaves one row with the newest values. Child rows
//! (participants, tags, buttons, custom properties, goals) are replaced as a set with their
//! parent, inside the caller's transaction.

use drift_types::{
    Account, Contact, Conversation, Meeting, Message, OrgId, Playbook, User,
    webhook::PlaybookGoalMet,
};

use crate::{Conn, Op, Result};

/// Warehouse tables in schema order.
pub const TABLES: &[&str] = &[
    "conversations",
    "conversation_participants",
    "conversation_tags",
    "messages",
    "message_buttons",
    "transcripts",
    "contacts",
    "users",
    "accounts",
    "account_custom_properties",
    "playbooks",
    "playbook_goals",
    "playbook_goals_met",
    "meetings",
];

fn json_text<T: serde::Serialize>(v: &Option<T>) -> Option<String> {
    v.as_ref().and_then(|v| serde_json::to_string(v).ok())
}

/// Upserts a conversation and replaces its participants and tags.
pub async fn upsert_conversation(
    conn: &mut Conn,
    org: OrgId,
    c: &Conversation,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO conversations (org_id, id, status, contact_id, inbox_id, related_playbook_id, \
         created_at, updated_at, synced_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (org_id, id) DO UPDATE SET status = excluded.status, \
         contact_id = excluded.contact_id, inbox_id = excluded.inbox_id, \
         related_playbook_id = excluded.related_playbook_id, created_at = excluded.created_at, \
         updated_at = excluded.updated_at, synced_at = excluded.synced_at",
    )
    .bind(org.0)
    .bind(c.id.0)
    .bind(c.status.as_str())
    .bind(c.contact_id.map(|x| x.0))
    .bind(c.inbox_id.map(|x| x.0))
    .bind(c.related_playbook_id.map(|x| x.0))
    .bind(c.created_at.map(|x| x.0))
    .bind(c.updated_at.map(|x| x.0))
    .bind(now_ms)
    .execute(&mut *conn)
    .await
    .op("upserting a conversation")?;
    replace_participants(
        conn,
        org,
        c.id.0,
        &c.participants.iter().map(|u| u.0).collect::<Vec<_>>(),
    )
    .await?;
    sqlx::query("DELETE FROM conversation_tags WHERE org_id = $1 AND conversation_id = $2")
        .bind(org.0)
        .bind(c.id.0)
        .execute(&mut *conn)
        .await
        .op("clearing conversation tags")?;
    for t in &c.conversation_tags {
        sqlx::query(
            "INSERT INTO conversation_tags (org_id, conversation_id, name, color) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (org_id, conversation_id, name) DO NOTHING",
        )
        .bind(org.0)
        .bind(c.id.0)
        .bind(&t.name)
        .bind(&t.color)
        .execute(&mut *conn)
        .await
        .op("inserting a conversation tag")?;
    }
    Ok(())
}

/// Replaces a conversation's participant set.
pub async fn replace_participants(
    conn: &mut Conn,
    org: OrgId,
    conversation_id: i64,
    users: &[i64],
) -> Result<()> {
    sqlx::query("DELETE FROM conversation_participants WHERE org_id = $1 AND conversation_id = $2")
        .bind(org.0)
        .bind(conversation_id)
        .execute(&mut *conn)
        .await
        .op("clearing participants")?;
    add_participants(conn, org, conversation_id, users).await
}

/// Adds participants (already present ones stay).
pub async fn add_participants(
    conn: &mut Conn,
    org: OrgId,
    conversation_id: i64,
    users: &[i64],
) -> Result<()> {
    for u in users {
        sqlx::query(
            "INSERT INTO conversation_participants (org_id, conversation_id, user_id) \
             VALUES ($1, $2, $3) ON CONFLICT (org_id, conversation_id, user_id) DO NOTHING",
        )
        .bind(org.0)
        .bind(conversation_id)
        .bind(*u)
        .execute(&mut *conn)
        .await
        .op("inserting a participant")?;
    }
    Ok(())
}

/// Removes participants.
pub async fn remove_participants(
    conn: &mut Conn,
    org: OrgId,
    conversation_id: i64,
    users: &[i64],
) -> Result<()> {
    for u in users {
        sqlx::query(
            "DELETE FROM conversation_participants \
             WHERE org_id = $1 AND conversation_id = $2 AND user_id = $3",
        )
        .bind(org.0)
        .bind(conversation_id)
        .bind(*u)
        .execute(&mut *conn)
        .await
        .op("removing a participant")?;
    }
    Ok(())
}

/// Upserts a message and replaces its buttons.
pub async fn upsert_message(conn: &mut Conn, org: OrgId, m: &Message) -> Result<()> {
    sqlx::query(
        "INSERT INTO messages (org_id, id, conversation_id, created_at, author_type, author_id, \
         author_bot, type, body, context, attributes, edited_message_id, edit_type) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (org_id, id) DO UPDATE SET conversation_id = excluded.conversation_id, \
         created_at = excluded.created_at, author_type = excluded.author_type, \
         author_id = excluded.author_id, author_bot = excluded.author_bot, type = excluded.type, \
         body = excluded.body, context = excluded.context, attributes = excluded.attributes, \
         edited_message_id = excluded.edited_message_id, edit_type = excluded.edit_type",
    )
    .bind(org.0)
    .bind(m.id.0)
    .bind(m.conversation_id.0)
    .bind(m.created_at.0)
    .bind(m.author.kind.as_str())
    .bind(m.author.id)
    .bind(i64::from(m.author.bot))
    .bind(m.kind.as_str())
    .bind(&m.body)
    .bind(json_text(&m.context))
    .bind(json_text(&m.attributes))
    .bind(m.edited_message_id.map(|x| x.0))
    .bind(&m.edit_type)
    .execute(&mut *conn)
    .await
    .op("upserting a message")?;
    sqlx::query("DELETE FROM message_buttons WHERE org_id = $1 AND message_id = $2")
        .bind(org.0)
        .bind(m.id.0)
        .execute(&mut *conn)
        .await
        .op("clearing message buttons")?;
    for (i, b) in m.buttons.iter().flatten().enumerate() {
        sqlx::query(
            "INSERT INTO message_buttons (org_id, message_id, position, label, value, type, style) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(org.0)
        .bind(m.id.0)
        .bind(i as i64)
        .bind(&b.label)
        .bind(&b.value)
        .bind(b.kind.as_str())
        .bind(&b.style)
        .execute(&mut *conn)
        .await
        .op("inserting a message button")?;
    }
    Ok(())
}

/// Upserts a conversation's transcript.
pub async fn upsert_transcript(
    conn: &mut Conn,
    org: OrgId,
    conversation_id: i64,
    body: &str,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO transcripts (org_id, conversation_id, body, fetched_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id, conversation_id) DO UPDATE SET body = excluded.body, \
         fetched_at = excluded.fetched_at",
    )
    .bind(org.0)
    .bind(conversation_id)
    .bind(body)
    .bind(now_ms)
    .execute(conn)
    .await
    .op("upserting a transcript")?;
    Ok(())
}

/// Upserts a contact: common attributes as columns, all of them as JSON.
pub async fn upsert_contact(conn: &mut Conn, org: OrgId, c: &Contact, now_ms: i64) -> Result<()> {
    let a = &c.attributes;
    let s = |k: &str| a.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    sqlx::query(
        "INSERT INTO contacts (org_id, id, created_at, email, name, first_name, last_name, phone, \
         company, title, external_id, attributes, synced_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (org_id, id) DO UPDATE SET created_at = excluded.created_at, \
         email = excluded.email, name = excluded.name, first_name = excluded.first_name, \
         last_name = excluded.last_name, phone = excluded.phone, company = excluded.company, \
         title = excluded.title, external_id = excluded.external_id, \
         attributes = excluded.attributes, synced_at = excluded.synced_at",
    )
    .bind(org.0)
    .bind(c.id.0)
    .bind(c.created_at.map(|x| x.0))
    .bind(a.email())
    .bind(a.name())
    .bind(a.first_name())
    .bind(a.last_name())
    .bind(a.phone())
    .bind(s("company").or_else(|| s("employment_name")))
    .bind(s("title").or_else(|| s("employment_title")))
    .bind(a.external_id())
    .bind(serde_json::Value::Object(a.0.clone()).to_string())
    .bind(now_ms)
    .execute(conn)
    .await
    .op("upserting a contact")?;
    Ok(())
}

/// Upserts a user (agent or bot).
pub async fn upsert_user(conn: &mut Conn, org: OrgId, u: &User) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (org_id, id, name, alias, email, phone, locale, availability, role, \
         time_zone, avatar_url, verified, bot, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (org_id, id) DO UPDATE SET name = excluded.name, alias = excluded.alias, \
         email = excluded.email, phone = excluded.phone, locale = excluded.locale, \
         availability = excluded.availability, role = excluded.role, \
         time_zone = excluded.time_zone, avatar_url = excluded.avatar_url, \
         verified = excluded.verified, bot = excluded.bot, created_at = excluded.created_at, \
         updated_at = excluded.updated_at",
    )
    .bind(org.0)
    .bind(u.id.0)
    .bind(&u.name)
    .bind(&u.alias)
    .bind(&u.email)
    .bind(&u.phone)
    .bind(&u.locale)
    .bind(&u.availability)
    .bind(&u.role)
    .bind(&u.time_zone)
    .bind(&u.avatar_url)
    .bind(i64::from(u.verified))
    .bind(i64::from(u.bot))
    .bind(u.created_at.map(|x| x.0))
    .bind(u.updated_at.map(|x| x.0))
    .execute(conn)
    .await
    .op("upserting a user")?;
    Ok(())
}

/// Sets one user's availability (from `user_availability_updated`).
pub async fn set_user_availability(
    conn: &mut Conn,
    org: OrgId,
    user_id: i64,
    availability: &str,
) -> Result<u64> {
    Ok(
        sqlx::query("UPDATE users SET availability = $3 WHERE org_id = $1 AND id = $2")
            .bind(org.0)
            .bind(user_id)
            .bind(availability)
            .execute(conn)
            .await
            .op("updating availability")?
            .rows_affected(),
    )
}

/// Upserts an account and replaces its custom properties.
pub async fn upsert_account(conn: &mut Conn, org: OrgId, a: &Account) -> Result<()> {
    sqlx::query(
        "INSERT INTO accounts (org_id, account_id, owner_id, name, domain, deleted, targeted, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (org_id, account_id) DO UPDATE SET owner_id = excluded.owner_id, \
         name = excluded.name, domain = excluded.domain, deleted = excluded.deleted, \
         targeted = excluded.targeted, created_at = excluded.created_at, \
         updated_at = excluded.updated_at",
    )
    .bind(org.0)
    .bind(&a.account_id)
    .bind(a.owner_id.map(|x| x.0))
    .bind(&a.name)
    .bind(&a.domain)
    .bind(i64::from(a.deleted))
    .bind(i64::from(a.targeted))
    .bind(a.create_date_time.map(|x| x.0))
    .bind(a.update_date_time.map(|x| x.0))
    .execute(&mut *conn)
    .await
    .op("upserting an account")?;
    sqlx::query("DELETE FROM account_custom_properties WHERE org_id = $1 AND account_id = $2")
        .bind(org.0)
        .bind(&a.account_id)
        .execute(&mut *conn)
        .await
        .op("clearing account properties")?;
    for p in &a.custom_properties {
        sqlx::query(
            "INSERT INTO account_custom_properties (org_id, account_id, name, label, type, value) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id, account_id, name) \
             DO UPDATE SET label = excluded.label, type = excluded.type, value = excluded.value",
        )
        .bind(org.0)
        .bind(&a.account_id)
        .bind(&p.name)
        .bind(&p.label)
        .bind(&p.kind)
        .bind(p.value.to_string())
        .execute(&mut *conn)
        .await
        .op("inserting an account property")?;
    }
    Ok(())
}

/// Upserts a playbook and replaces its goals.
pub async fn upsert_playbook(conn: &mut Conn, org: OrgId, p: &Playbook) -> Result<()> {
    sqlx::query(
        "INSERT INTO playbooks (org_id, id, name, interaction_id, report_type, meta, created_at, \
         updated_at, created_author_id, updated_author_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (org_id, id) DO UPDATE SET name = excluded.name, \
         interaction_id = excluded.interaction_id, report_type = excluded.report_type, \
         meta = excluded.meta, created_at = excluded.created_at, updated_at = excluded.updated_at, \
         created_author_id = excluded.created_author_id, \
         updated_author_id = excluded.updated_author_id",
    )
    .bind(org.0)
    .bind(p.id.0)
    .bind(&p.name)
    .bind(p.interaction_id)
    .bind(&p.report_type)
    .bind(json_text(&p.meta))
    .bind(p.created_at.map(|x| x.0))
    .bind(p.updated_at.map(|x| x.0))
    .bind(p.created_author_id.map(|x| x.0))
    .bind(p.updated_author_id.map(|x| x.0))
    .execute(&mut *conn)
    .await
    .op("upserting a playbook")?;
    sqlx::query("DELETE FROM playbook_goals WHERE org_id = $1 AND playbook_id = $2")
        .bind(org.0)
        .bind(p.id.0)
        .execute(&mut *conn)
        .await
        .op("clearing playbook goals")?;
    for g in &p.goals {
        sqlx::query(
            "INSERT INTO playbook_goals (org_id, playbook_id, goal_id, message) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (org_id, playbook_id, goal_id) \
             DO UPDATE SET message = excluded.message",
        )
        .bind(org.0)
        .bind(p.id.0)
        .bind(&g.id)
        .bind(&g.message)
        .execute(&mut *conn)
        .await
        .op("inserting a playbook goal")?;
    }
    Ok(())
}

/// Records a `playbook_goal_met` event (one row per conversation, playbook and goal).
pub async fn record_goal_met(
    conn: &mut Conn,
    org: OrgId,
    g: &PlaybookGoalMet,
    event_id: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO playbook_goals_met (org_id, conversation_id, playbook_id, goal_id, goal_name, \
         contact_id, event_id) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (org_id, conversation_id, playbook_id, goal_id) DO UPDATE SET \
         goal_name = excluded.goal_name, contact_id = excluded.contact_id",
    )
    .bind(org.0)
    .bind(g.conversation_id.0)
    .bind(g.playbook_id.map_or(0, |x| x.0))
    .bind(g.goal_id.clone().unwrap_or_default())
    .bind(&g.goal_name)
    .bind(g.contact_id.map(|x| x.0))
    .bind(event_id)
    .execute(conn)
    .await
    .op("recording a goal")?;
    Ok(())
}

/// The key a meeting is stored under: its calendar event id, else agent and slot start.
pub fn meeting_key(m: &Meeting) -> String {
    match &m.event_id {
        Some(e) if !e.is_empty() => e.clone(),
        _ => format!(
            "{}:{}",
            m.agent_id.map_or(0, |x| x.0),
            m.slot_start.map_or(0, |x| x.0)
        ),
    }
}

/// Upserts a meeting.
pub async fn upsert_meeting(conn: &mut Conn, org: OrgId, m: &Meeting) -> Result<()> {
    sqlx::query(
        "INSERT INTO meetings (org_id, meeting_key, event_id, agent_id, scheduler_id, \
         conversation_id, status, meeting_source, meeting_type, slug, slot_start, slot_end, \
         scheduled_at, updated_at, end_user_time_zone, meeting_notes, booked_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         ON CONFLICT (org_id, meeting_key) DO UPDATE SET event_id = excluded.event_id, \
         agent_id = excluded.agent_id, scheduler_id = excluded.scheduler_id, \
         conversation_id = excluded.conversation_id, status = excluded.status, \
         meeting_source = excluded.meeting_source, meeting_type = excluded.meeting_type, \
         slug = excluded.slug, slot_start = excluded.slot_start, slot_end = excluded.slot_end, \
         scheduled_at = excluded.scheduled_at, updated_at = excluded.updated_at, \
         end_user_time_zone = excluded.end_user_time_zone, \
         meeting_notes = excluded.meeting_notes, booked_by = excluded.booked_by",
    )
    .bind(org.0)
    .bind(meeting_key(m))
    .bind(&m.event_id)
    .bind(m.agent_id.map(|x| x.0))
    .bind(m.scheduler_id.map(|x| x.0))
    .bind(m.conversation_id.map(|x| x.0))
    .bind(&m.status)
    .bind(&m.meeting_source)
    .bind(&m.meeting_type)
    .bind(&m.slug)
    .bind(m.slot_start.map(|x| x.0))
    .bind(m.slot_end.map(|x| x.0))
    .bind(m.scheduled_at.map(|x| x.0))
    .bind(m.updated_at.map(|x| x.0))
    .bind(&m.end_user_time_zone)
    .bind(&m.meeting_notes)
    .bind(m.booked_by)
    .execute(conn)
    .await
    .op("upserting a meeting")?;
    Ok(())
}
