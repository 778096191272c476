//! Every exported table, as data (docs/SCHEMA.md; a test checks them against the
//! migrations).

use super::schema::{Stream, Table, int, int_null, text, text_null};

impl Table {
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

/// The table called `name`, which the mapping names by constant (a test checks each exists).
pub(super) fn must(name: &str) -> &'static Table {
    table(name).unwrap_or_else(|| panic!("no table {name}"))
}
