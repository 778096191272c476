//! The one mapping from Drift objects to rows. The SQL store, the file destinations and the
//! Airbyte streams all write these rows, so a table has the same columns everywhere. Child
//! tables (participants, tags, buttons, custom properties, goals) hold a set that belongs to
//! one parent row: a batch that carries the parent carries its complete child set.

use drift_types::{
    Account, Contact, Conversation, LandingPage, Meeting, Message, OrgId, Playbook, User,
};

use super::batch::{Batch, Value};
use super::defs::must;

impl Batch {
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
                // Fetched, so present (a sweep or a re-fetch that finds it gone sets it).
                Value::Null,
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
        for (i, a) in m.attachments.iter().flatten().enumerate() {
            self.push(
                must("attachments"),
                vec![
                    org.0.into(),
                    m.id.0.into(),
                    (i as i64).into(),
                    m.conversation_id.0.into(),
                    a.document_id().into(),
                    a.file_name.as_str().into(),
                    Some(a.mime_type.as_str()).filter(|s| !s.is_empty()).into(),
                    a.size.into(),
                    Some(a.url.as_str()).filter(|s| !s.is_empty()).into(),
                ],
            );
        }
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
                json_cell(&a.0).into(),
                Value::Null,
                now_ms.into(),
            ],
        );
        // Drift's legacy `tags` attribute: names, or `{name, color}` objects.
        let mut seen = std::collections::HashSet::new();
        for tag in a
            .get("tags")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let (name, color) = match tag {
                serde_json::Value::String(n) => (n.as_str(), None),
                serde_json::Value::Object(o) => (
                    o.get("name").and_then(|v| v.as_str()).unwrap_or_default(),
                    o.get("color").and_then(|v| v.as_str()),
                ),
                _ => continue,
            };
            if !name.is_empty() && seen.insert(name) {
                self.push(
                    must("contact_tags"),
                    vec![org.0.into(), c.id.0.into(), name.into(), color.into()],
                );
            }
        }
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
                // Deleted in Drift: since its last update (or, without one, unknown but set).
                a.deleted
                    .then(|| a.update_date_time.map_or(0, |x| x.0))
                    .into(),
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
                        json_cell(&p.value).into(),
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
    v.as_ref().map(json_cell)
}

/// A JSON cell: the document's text, with U+0000 in any string replaced by U+FFFD, since
/// PostgreSQL's `jsonb` refuses the `\u0000` escape (the same rule as text cells, so a
/// document reads the same in every destination).
pub fn json_cell<T: serde::Serialize + ?Sized>(v: &T) -> String {
    let text = serde_json::to_string(v).unwrap_or_else(|_| "null".into());
    match json_without_nul(&text) {
        std::borrow::Cow::Owned(clean) => clean,
        std::borrow::Cow::Borrowed(_) => text,
    }
}

/// A JSON document's text with U+0000 in any string or key replaced by U+FFFD, as
/// [`json_cell`] writes it (borrowed when it holds none, or is not JSON).
pub fn json_without_nul(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("\\u0000") {
        return std::borrow::Cow::Borrowed(text);
    }
    let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(text) else {
        return std::borrow::Cow::Borrowed(text);
    };
    fn scrub(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => *s = s.replace('\0', super::batch::NUL_REPLACEMENT),
            serde_json::Value::Array(a) => a.iter_mut().for_each(scrub),
            serde_json::Value::Object(o) => {
                let entries = std::mem::take(o);
                for (k, mut v) in entries {
                    scrub(&mut v);
                    o.insert(k.replace('\0', super::batch::NUL_REPLACEMENT), v);
                }
            }
            _ => {}
        }
    }
    scrub(&mut doc);
    std::borrow::Cow::Owned(doc.to_string())
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
    use crate::tables::{TABLES, Value, table};

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
