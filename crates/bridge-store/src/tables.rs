//! The exported tables as data: every table's columns, key and parent, and the one mapping
//! from Drift objects to rows. The SQL store, the file destinations and the Airbyte streams
//! all write these rows, so a table has the same columns everywhere (docs/SCHEMA.md); a test
//! checks them against the migrations.
//!
//! Child tables (participants, tags, buttons, custom properties, goals) hold a set that belongs
//! to one parent row: a batch that carries the parent carries its complete child set.

use drift_types::{
    Account, Contact, Conversation, LandingPage, Meeting, Message, OrgId, Playbook, User,
};

/// A column's type: 64-bit integers (ids, epoch milliseconds, 0/1 booleans) or text (strings,
/// JSON documents).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// `BIGINT`.
    Int,
    /// `TEXT`.
    Text,
}

/// One column.
#[derive(Debug)]
pub struct Column {
    /// Name, the same in every destination.
    pub name: &'static str,
    /// Type.
    pub ty: ColumnType,
    /// Whether it can be NULL.
    pub nullable: bool,
}

const fn int(name: &'static str) -> Column {
    Column {
        name,
        ty: ColumnType::Int,
        nullable: false,
    }
}
const fn int_null(name: &'static str) -> Column {
    Column {
        name,
        ty: ColumnType::Int,
        nullable: true,
    }
}
const fn text(name: &'static str) -> Column {
    Column {
        name,
        ty: ColumnType::Text,
        nullable: false,
    }
}
const fn text_null(name: &'static str) -> Column {
    Column {
        name,
        ty: ColumnType::Text,
        nullable: true,
    }
}

/// The export streams: what `--tables` selects and what Airbyte calls a stream's family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stream {
    /// Accounts and their custom properties.
    Accounts,
    /// Users (agents and bots).
    Users,
    /// Conversations, participants and tags.
    Conversations,
    /// Messages and their buttons.
    Messages,
    /// Plain-text transcripts.
    Transcripts,
    /// Contacts referenced by conversations, events or a list.
    Contacts,
    /// Playbooks, goals and conversational landing pages.
    Playbooks,
    /// Booked meetings.
    Meetings,
}

impl Stream {
    /// Every stream, in the order an export walks them.
    pub const ALL: [Stream; 8] = [
        Stream::Users,
        Stream::Playbooks,
        Stream::Accounts,
        Stream::Meetings,
        Stream::Conversations,
        Stream::Messages,
        Stream::Transcripts,
        Stream::Contacts,
    ];

    /// The stream's name.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Accounts => "accounts",
            Stream::Users => "users",
            Stream::Conversations => "conversations",
            Stream::Messages => "messages",
            Stream::Transcripts => "transcripts",
            Stream::Contacts => "contacts",
            Stream::Playbooks => "playbooks",
            Stream::Meetings => "meetings",
        }
    }

    /// Parses a stream name.
    pub fn parse(s: &str) -> Option<Stream> {
        Stream::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// One table.
#[derive(Debug)]
pub struct Table {
    /// Name, the same in every destination.
    pub name: &'static str,
    /// Columns in order.
    pub columns: &'static [Column],
    /// The first `key` columns are the primary key.
    pub key: usize,
    /// For a child table, the parent's name; the parent's key is this table's first `key - 1`
    /// columns.
    pub parent: Option<&'static str>,
    /// Columns that say when driftbridge wrote the row rather than what Drift holds; a row
    /// that differs only in these is unchanged.
    pub volatile: &'static [&'static str],
    /// The stream that fills it.
    pub stream: Stream,
}

impl Table {
    /// Position of a column.
    pub fn index(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == column)
    }

    /// Whether the column is volatile.
    pub fn is_volatile(&self, column: &str) -> bool {
        self.volatile.contains(&column)
    }

    /// Position of this table in [`TABLES`].
    pub fn position(&self) -> usize {
        TABLES
            .iter()
            .position(|t| t.name == self.name)
            .unwrap_or(usize::MAX)
    }
}

/// Every exported table, parents before their children.
pub static TABLES: [Table; 14] = [
    Table {
        name: "accounts",
        columns: &[
            int("org_id"),
            text("account_id"),
            int_null("owner_id"),
            text_null("name"),
            text_null("domain"),
            int("deleted"),
            int("targeted"),
            int_null("created_at"),
            int_null("updated_at"),
        ],
        key: 2,
        parent: None,
        volatile: &[],
        stream: Stream::Accounts,
    },
    Table {
        name: "account_custom_properties",
        columns: &[
            int("org_id"),
            text("account_id"),
            text("name"),
            text("label"),
            text("type"),
            text("value"),
        ],
        key: 3,
        parent: Some("accounts"),
        volatile: &[],
        stream: Stream::Accounts,
    },
    Table {
        name: "users",
        columns: &[
            int("org_id"),
            int("id"),
            text_null("name"),
            text_null("alias"),
            text_null("email"),
            text_null("phone"),
            text_null("locale"),
            text_null("availability"),
            text_null("role"),
            text_null("time_zone"),
            text_null("avatar_url"),
            int("verified"),
            int("bot"),
            int_null("created_at"),
            int_null("updated_at"),
        ],
        key: 2,
        parent: None,
        volatile: &[],
        stream: Stream::Users,
    },
    Table {
        name: "conversations",
        columns: &[
            int("org_id"),
            int("id"),
            text("status"),
            int_null("contact_id"),
            int_null("inbox_id"),
            int_null("related_playbook_id"),
            int_null("created_at"),
            int_null("updated_at"),
            int("synced_at"),
        ],
        key: 2,
        parent: None,
        volatile: &["synced_at"],
        stream: Stream::Conversations,
    },
    Table {
        name: "conversation_participants",
        columns: &[int("org_id"), int("conversation_id"), int("user_id")],
        key: 3,
        parent: Some("conversations"),
        volatile: &[],
        stream: Stream::Conversations,
    },
    Table {
        name: "conversation_tags",
        columns: &[
            int("org_id"),
            int("conversation_id"),
            text("name"),
            text_null("color"),
        ],
        key: 3,
        parent: Some("conversations"),
        volatile: &[],
        stream: Stream::Conversations,
    },
    Table {
        name: "messages",
        columns: &[
            int("org_id"),
            int("id"),
            int("conversation_id"),
            int("created_at"),
            text("author_type"),
            int("author_id"),
            int("author_bot"),
            text("type"),
            text_null("body"),
            text_null("context"),
            text_null("attributes"),
            int_null("edited_message_id"),
            text_null("edit_type"),
        ],
        key: 2,
        parent: None,
        volatile: &[],
        stream: Stream::Messages,
    },
    Table {
        name: "message_buttons",
        columns: &[
            int("org_id"),
            int("message_id"),
            int("position"),
            text("label"),
            text("value"),
            text("type"),
            text_null("style"),
        ],
        key: 3,
        parent: Some("messages"),
        volatile: &[],
        stream: Stream::Messages,
    },
    Table {
        name: "transcripts",
        columns: &[
            int("org_id"),
            int("conversation_id"),
            text("body"),
            int("fetched_at"),
        ],
        key: 2,
        parent: None,
        volatile: &["fetched_at"],
        stream: Stream::Transcripts,
    },
    Table {
        name: "contacts",
        columns: &[
            int("org_id"),
            int("id"),
            int_null("created_at"),
            text_null("email"),
            text_null("name"),
            text_null("first_name"),
            text_null("last_name"),
            text_null("phone"),
            text_null("company"),
            text_null("title"),
            text_null("external_id"),
            text("attributes"),
            int("synced_at"),
        ],
        key: 2,
        parent: None,
        volatile: &["synced_at"],
        stream: Stream::Contacts,
    },
    Table {
        name: "playbooks",
        columns: &[
            int("org_id"),
            int("id"),
            text("name"),
            int_null("interaction_id"),
            text_null("report_type"),
            text_null("meta"),
            int_null("created_at"),
            int_null("updated_at"),
            int_null("created_author_id"),
            int_null("updated_author_id"),
        ],
        key: 2,
        parent: None,
        volatile: &[],
        stream: Stream::Playbooks,
    },
    Table {
        name: "playbook_goals",
        columns: &[
            int("org_id"),
            int("playbook_id"),
            text("goal_id"),
            text("message"),
        ],
        key: 3,
        parent: Some("playbooks"),
        volatile: &[],
        stream: Stream::Playbooks,
    },
    Table {
        name: "landing_pages",
        columns: &[
            int("org_id"),
            int("playbook_id"),
            text_null("name"),
            text_null("url"),
        ],
        key: 2,
        parent: None,
        volatile: &[],
        stream: Stream::Playbooks,
    },
    Table {
        name: "meetings",
        columns: &[
            int("org_id"),
            text("meeting_key"),
            text_null("event_id"),
            int_null("agent_id"),
            int_null("scheduler_id"),
            int_null("conversation_id"),
            text_null("status"),
            text_null("meeting_source"),
            text_null("meeting_type"),
            text_null("slug"),
            int_null("slot_start"),
            int_null("slot_end"),
            int_null("scheduled_at"),
            int_null("updated_at"),
            text_null("end_user_time_zone"),
            text_null("meeting_notes"),
            int_null("booked_by"),
        ],
        key: 2,
        parent: None,
        volatile: &[],
        stream: Stream::Meetings,
    },
];

/// The table called `name`.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

fn must(name: &str) -> &'static Table {
    table(name).unwrap_or_else(|| panic!("no table {name}"))
}

/// One cell.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
}

impl Value {
    /// The integer, if it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The text, if it is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// As JSON: null, a number or a string.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Int(i) => (*i).into(),
            Value::Text(s) => s.clone().into(),
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One row, in its table's column order.
pub type Row = Vec<Value>;

/// Rows for several tables, in [`TABLES`] order.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    rows: Vec<Vec<Row>>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch {
            rows: vec![Vec::new(); TABLES.len()],
        }
    }

    /// Adds a row.
    pub fn push(&mut self, table: &'static Table, row: Row) {
        debug_assert_eq!(row.len(), table.columns.len(), "row of {}", table.name);
        if self.rows.is_empty() {
            self.rows = vec![Vec::new(); TABLES.len()];
        }
        self.rows[table.position()].push(row);
    }

    /// The rows of one table.
    pub fn rows(&self, table: &Table) -> &[Row] {
        self.rows
            .get(table.position())
            .map_or(&[][..], Vec::as_slice)
    }

    /// Tables with rows, in order.
    pub fn tables(&self) -> impl Iterator<Item = (&'static Table, &[Row])> {
        TABLES
            .iter()
            .zip(self.rows.iter())
            .filter(|(_, r)| !r.is_empty())
            .map(|(t, r)| (t, r.as_slice()))
    }

    /// Total rows.
    pub fn len(&self) -> usize {
        self.rows.iter().map(Vec::len).sum()
    }

    /// Whether it holds no row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves every row of `other` into this batch.
    pub fn append(&mut self, other: Batch) {
        for (i, rows) in other.rows.into_iter().enumerate() {
            if !rows.is_empty() {
                if self.rows.is_empty() {
                    self.rows = vec![Vec::new(); TABLES.len()];
                }
                self.rows[i].extend(rows);
            }
        }
    }

    // ---- the mapping from Drift objects --------------------------------------------------

    /// A conversation with its participants and tags.
    pub fn conversation(&mut self, org: OrgId, c: &Conversation, now_ms: i64) {
        self.push(
            must("conversations"),
            vec![
                org.0.into(),
                c.id.0.into(),
                c.status.as_str().into(),
                c.contact_id.map(|x| x.0).into(),
                c.inbox_id.map(|x| x.0).into(),
                c.related_playbook_id.map(|x| x.0).into(),
                c.created_at.map(|x| x.0).into(),
                c.updated_at.map(|x| x.0).into(),
                now_ms.into(),
            ],
        );
        let mut users: Vec<i64> = c.participants.iter().map(|u| u.0).collect();
        users.sort_unstable();
        users.dedup();
        for u in users {
            self.participant(org, c.id.0, u);
        }
        let mut seen = std::collections::HashSet::new();
        for t in &c.conversation_tags {
            if seen.insert(t.name.as_str()) {
                self.push(
                    must("conversation_tags"),
                    vec![
                        org.0.into(),
                        c.id.0.into(),
                        t.name.as_str().into(),
                        t.color.clone().into(),
                    ],
                );
            }
        }
    }

    /// One participant of a conversation (alone, it is added to the set; with its
    /// conversation in the batch, it is part of the complete set).
    pub fn participant(&mut self, org: OrgId, conversation_id: i64, user_id: i64) {
        self.push(
            must("conversation_participants"),
            vec![org.0.into(), conversation_id.into(), user_id.into()],
        );
    }

    /// A message with its buttons.
    pub fn message(&mut self, org: OrgId, m: &Message) {
        self.push(
            must("messages"),
            vec![
                org.0.into(),
                m.id.0.into(),
                m.conversation_id.0.into(),
                m.created_at.0.into(),
                m.author.kind.as_str().into(),
                m.author.id.into(),
                m.author.bot.into(),
                m.kind.as_str().into(),
                m.body.clone().into(),
                json_text(&m.context).into(),
                json_text(&m.attributes).into(),
                m.edited_message_id.map(|x| x.0).into(),
                m.edit_type.clone().into(),
            ],
        );
        for (i, b) in m.buttons.iter().flatten().enumerate() {
            self.push(
                must("message_buttons"),
                vec![
                    org.0.into(),
                    m.id.0.into(),
                    (i as i64).into(),
                    b.label.as_str().into(),
                    b.value.as_str().into(),
                    b.kind.as_str().into(),
                    b.style.clone().into(),
                ],
            );
        }
    }

    /// A conversation's plain-text transcript.
    pub fn transcript(&mut self, org: OrgId, conversation_id: i64, body: &str, now_ms: i64) {
        self.push(
            must("transcripts"),
            vec![
                org.0.into(),
                conversation_id.into(),
                body.into(),
                now_ms.into(),
            ],
        );
    }

    /// A contact: common attributes as columns, all of them as JSON.
    pub fn contact(&mut self, org: OrgId, c: &Contact, now_ms: i64) {
        let a = &c.attributes;
        let s = |k: &str| a.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        self.push(
            must("contacts"),
            vec![
                org.0.into(),
                c.id.0.into(),
                c.created_at.map(|x| x.0).into(),
                a.email().map(str::to_owned).into(),
                a.name().map(str::to_owned).into(),
                a.first_name().map(str::to_owned).into(),
                a.last_name().map(str::to_owned).into(),
                a.phone().map(str::to_owned).into(),
                s("company").or_else(|| s("employment_name")).into(),
                s("title").or_else(|| s("employment_title")).into(),
                a.external_id().map(str::to_owned).into(),
                serde_json::Value::Object(a.0.clone()).to_string().into(),
                now_ms.into(),
            ],
        );
    }

    /// A user.
    pub fn user(&mut self, org: OrgId, u: &User) {
        self.push(
            must("users"),
            vec![
                org.0.into(),
                u.id.0.into(),
                u.name.clone().into(),
                u.alias.clone().into(),
                u.email.clone().into(),
                u.phone.clone().into(),
                u.locale.clone().into(),
                u.availability.clone().into(),
                u.role.clone().into(),
                u.time_zone.clone().into(),
                u.avatar_url.clone().into(),
                u.verified.into(),
                u.bot.into(),
                u.created_at.map(|x| x.0).into(),
                u.updated_at.map(|x| x.0).into(),
            ],
        );
    }

    /// An account with its custom properties.
    pub fn account(&mut self, org: OrgId, a: &Account) {
        self.push(
            must("accounts"),
            vec![
                org.0.into(),
                a.account_id.as_str().into(),
                a.owner_id.map(|x| x.0).into(),
                a.name.clone().into(),
                a.domain.clone().into(),
                a.deleted.into(),
                a.targeted.into(),
                a.create_date_time.map(|x| x.0).into(),
                a.update_date_time.map(|x| x.0).into(),
            ],
        );
        let mut seen = std::collections::HashSet::new();
        for p in &a.custom_properties {
            if seen.insert(p.name.as_str()) {
                self.push(
                    must("account_custom_properties"),
                    vec![
                        org.0.into(),
                        a.account_id.as_str().into(),
                        p.name.as_str().into(),
                        p.label.as_str().into(),
                        p.kind.as_str().into(),
                        p.value.to_string().into(),
                    ],
                );
            }
        }
    }

    /// A playbook with its goals.
    pub fn playbook(&mut self, org: OrgId, p: &Playbook) {
        self.push(
            must("playbooks"),
            vec![
                org.0.into(),
                p.id.0.into(),
                p.name.as_str().into(),
                p.interaction_id.into(),
                p.report_type.clone().into(),
                json_text(&p.meta).into(),
                p.created_at.map(|x| x.0).into(),
                p.updated_at.map(|x| x.0).into(),
                p.created_author_id.map(|x| x.0).into(),
                p.updated_author_id.map(|x| x.0).into(),
            ],
        );
        let mut seen = std::collections::HashSet::new();
        for g in &p.goals {
            if seen.insert(g.id.as_str()) {
                self.push(
                    must("playbook_goals"),
                    vec![
                        org.0.into(),
                        p.id.0.into(),
                        g.id.as_str().into(),
                        g.message.as_str().into(),
                    ],
                );
            }
        }
    }

    /// A conversational landing page.
    pub fn landing_page(&mut self, org: OrgId, l: &LandingPage) {
        self.push(
            must("landing_pages"),
            vec![
                org.0.into(),
                l.id.0.into(),
                l.name.as_str().into(),
                l.url.as_str().into(),
            ],
        );
    }

    /// A meeting.
    pub fn meeting(&mut self, org: OrgId, m: &Meeting) {
        self.push(
            must("meetings"),
            vec![
                org.0.into(),
                meeting_key(m).into(),
                m.event_id.clone().into(),
                m.agent_id.map(|x| x.0).into(),
                m.scheduler_id.map(|x| x.0).into(),
                m.conversation_id.map(|x| x.0).into(),
                m.status.clone().into(),
                m.meeting_source.clone().into(),
                m.meeting_type.clone().into(),
                m.slug.clone().into(),
                m.slot_start.map(|x| x.0).into(),
                m.slot_end.map(|x| x.0).into(),
                m.scheduled_at.map(|x| x.0).into(),
                m.updated_at.map(|x| x.0).into(),
                m.end_user_time_zone.clone().into(),
                m.meeting_notes.clone().into(),
                m.booked_by.into(),
            ],
        );
    }
}

fn json_text<T: serde::Serialize>(v: &Option<T>) -> Option<String> {
    v.as_ref().and_then(|v| serde_json::to_string(v).ok())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_child_table_names_an_earlier_parent_whose_key_it_starts_with() {
        for (i, t) in TABLES.iter().enumerate() {
            assert!(t.key >= 1 && t.key <= t.columns.len(), "{}", t.name);
            if let Some(p) = t.parent {
                let parent = table(p).expect("parent exists");
                assert!(parent.position() < i, "{} before {}", p, t.name);
                assert_eq!(t.key, parent.key + 1, "{}", t.name);
                for k in 0..parent.key {
                    assert_eq!(t.columns[k].ty, parent.columns[k].ty, "{}", t.name);
                }
            }
            for v in t.volatile {
                assert!(t.index(v).is_some(), "{}.{v}", t.name);
            }
        }
    }

    #[test]
    fn a_conversation_maps_to_one_row_plus_deduplicated_children() {
        let c: Conversation = serde_json::from_value(serde_json::json!({
            "id": 7, "status": "closed", "contactId": 3, "participants": [5, 5, 6],
            "conversationTags": [{"name": "vip", "color": "ff0000"}, {"name": "vip"}],
            "createdAt": 1, "updatedAt": 2
        }))
        .unwrap();
        let mut b = Batch::new();
        b.conversation(OrgId(1), &c, 99);
        assert_eq!(b.rows(must("conversations")).len(), 1);
        assert_eq!(b.rows(must("conversation_participants")).len(), 2);
        assert_eq!(b.rows(must("conversation_tags")).len(), 1);
        assert_eq!(
            b.rows(must("conversations"))[0][2],
            Value::Text("closed".into())
        );
        assert_eq!(b.len(), 4);
    }
}
