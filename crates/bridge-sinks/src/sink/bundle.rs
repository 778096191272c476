//! The conversation bundle: what the pipeline gathers once per event and every sink maps.

use drift_types::{AuthorType, Contact, Conversation, EpochMillis, Message, OrgId, Playbook, User};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use drift_types::html::{escape, strip_tags};

/// How a transcript is written into a CRM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TranscriptFormat {
    /// Drift's plain-text transcript, one line per message.
    #[default]
    Text,
    /// The same lines as HTML paragraphs, escaped.
    Html,
}

impl TranscriptFormat {
    /// Plain-text transcript lines in this format.
    fn render(self, text: String) -> String {
        match self {
            TranscriptFormat::Text => text,
            TranscriptFormat::Html => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| format!("<p>{}</p>", escape(l)))
                .collect(),
        }
    }
}

/// A conversation with everything a CRM write needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationBundle {
    /// The org.
    pub org: OrgId,
    /// The event that made it (`conversation_push`, ... or `replay`).
    pub event: String,
    /// The conversation.
    pub conversation: Conversation,
    /// Its contact, when it has one.
    pub contact: Option<Contact>,
    /// Participants and message authors that are users.
    pub users: Vec<User>,
    /// Every message, oldest first.
    pub messages: Vec<Message>,
    /// Drift's plain-text transcript.
    pub transcript: Option<String>,
    /// The playbook that started it.
    pub playbook: Option<Playbook>,
    /// The first touch of the visitor who had it, when the widget reported one
    /// (docs/WIDGET.md); read at delivery time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<drift_types::widget::Touch>,
    /// The meetings booked in it, as the store holds them when the delivery runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meetings: Vec<BookedMeeting>,
    /// Whether the contact opted out of emails (Drift's `user_unsubscribed`), as the store
    /// holds it when the delivery runs: a CRM record this delivery writes carries the
    /// CRM's opt-out field.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub opted_out: bool,
}

/// A meeting booked in the conversation, in its latest known state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookedMeeting {
    /// The store's key: Drift's calendar `eventId`, else `agentId:slotStart`.
    pub key: String,
    /// `booked`, `rescheduled` or `canceled`.
    pub status: String,
    /// Start, epoch ms.
    pub start_ms: Option<i64>,
    /// End, epoch ms.
    pub end_ms: Option<i64>,
    /// When it was booked, epoch ms.
    pub booked_at_ms: Option<i64>,
    /// The agent it is with.
    pub agent_id: Option<i64>,
    /// Drift's meeting type ("New Meeting", ...).
    pub meeting_type: Option<String>,
    /// The visitor's time zone.
    pub time_zone: Option<String>,
    /// Notes.
    pub notes: Option<String>,
}

impl BookedMeeting {
    /// The key CRM records carry to be found again: `org:key`.
    pub fn crm_key(&self, org: OrgId) -> String {
        format!("{}:{}", org.0, self.key)
    }

    /// The meeting as templates read it (an item of `meetings`, or a signal's `meeting`).
    pub(crate) fn context(&self, org: OrgId, agent: Option<&User>) -> Value {
        json!({
            "key": self.crm_key(org),
            "status": self.status,
            "start": iso(self.start_ms.map(EpochMillis)),
            "end": iso(self.end_ms.map(EpochMillis)),
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "booked_at": iso(self.booked_at_ms.map(EpochMillis)),
            "agent": {"id": self.agent_id, "name": agent.and_then(|u| u.name.clone()),
                      "email": agent.and_then(|u| u.email.clone())},
            "type": self.meeting_type,
            "time_zone": self.time_zone,
            "notes": self.notes,
        })
    }
}

/// The shape of [`BookedMeeting::context`].
pub(crate) fn meeting_shape() -> Value {
    json!({
        "key": "", "status": "", "start": "", "end": "", "start_ms": 0, "end_ms": 0,
        "booked_at": "", "agent": {"id": 0, "name": "", "email": ""}, "type": "",
        "time_zone": "", "notes": "",
    })
}

fn attr<'a>(c: &'a Contact, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .filter_map(|k| c.attributes.0.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .find(|s| !s.is_empty())
}

fn iso(ms: Option<EpochMillis>) -> Value {
    ms.map_or(Value::Null, |m| Value::String(m.to_iso8601()))
}

impl ConversationBundle {
    /// `org:conversation`, the key CRM records carry to be found again.
    pub fn key(&self) -> String {
        format!("{}:{}", self.org.0, self.conversation.id.0)
    }

    /// Whether this delivery writes the conversation's own record (a HubSpot note, a Salesforce
    /// Task). A meeting event (`new_meeting`, `meeting_updated`) and a late first touch
    /// (`widget_attribution`) write the contact and the meetings only: the record comes with
    /// the conversation's push, and an open conversation gets none early.
    pub fn writes_record(&self) -> bool {
        !matches!(
            self.event.as_str(),
            "new_meeting" | "meeting_updated" | "widget_attribution"
        )
    }

    /// The contact's email, lower-cased (CRMs de-duplicate on it).
    pub fn email(&self) -> Option<String> {
        self.contact
            .as_ref()
            .and_then(|c| attr(c, &["email"]))
            .map(str::to_lowercase)
    }

    /// The transcript as plain text: Drift's own, else one line per message.
    pub fn transcript_text(&self) -> String {
        if let Some(t) = self.transcript.as_deref().filter(|t| !t.trim().is_empty()) {
            return t.to_owned();
        }
        let mut out = String::new();
        for m in &self.messages {
            let Some(body) = m.body.as_deref().filter(|b| !b.is_empty()) else {
                continue;
            };
            out.push_str(&self.author_name(m));
            out.push_str(": ");
            out.push_str(&strip_tags(body));
            out.push('\n');
        }
        out
    }

    fn author_name(&self, m: &Message) -> String {
        match m.author.kind {
            AuthorType::User => self
                .users
                .iter()
                .find(|u| u.id.0 == m.author.id)
                .and_then(|u| u.name.clone())
                .unwrap_or_else(|| format!("User {}", m.author.id)),
            _ if m.author.bot => "Bot".to_owned(),
            _ => self
                .contact
                .as_ref()
                .and_then(|c| attr(c, &["name", "display_name", "email"]))
                .unwrap_or("Visitor")
                .to_owned(),
        }
    }

    /// The document templates and filters read: `type` (the HTTP event type), `conversation`,
    /// `contact`, `agent`, `participants`, `playbook`, `attribution`, `meetings`, `messages`,
    /// `transcript` (in `format`) and `transcript_text`. docs/SINKS.md lists every path.
    pub fn context(&self, format: TranscriptFormat) -> Value {
        let c = &self.conversation;
        let text = self.transcript_text();
        let contact = self.contact.as_ref().map_or(Value::Null, contact_json);
        let person = |u: &User| json!({"id": u.id.0, "name": u.name, "email": u.email});
        let participants: Vec<Value> = c
            .participants
            .iter()
            .filter_map(|id| self.users.iter().find(|u| u.id == *id))
            .map(person)
            .collect();
        let messages: Vec<Value> = self
            .messages
            .iter()
            .map(|m| {
                json!({
                    "id": m.id.0,
                    "author_type": m.author.kind,
                    "author_id": m.author.id,
                    "author_name": self.author_name(m),
                    "type": m.kind,
                    "body": m.body,
                    "created_at": m.created_at.to_iso8601(),
                })
            })
            .collect();
        let meetings: Vec<Value> = self
            .meetings
            .iter()
            .map(|m| {
                let agent = m
                    .agent_id
                    .and_then(|id| self.users.iter().find(|u| u.id.0 == id));
                m.context(self.org, agent)
            })
            .collect();
        json!({
            "org_id": self.org.0,
            "event": self.event,
            "type": event_type(&self.event),
            "key": self.key(),
            "conversation": {
                "id": c.id.0,
                "status": c.status,
                "created_at": iso(c.created_at),
                "updated_at": iso(c.updated_at),
                "created_at_ms": c.created_at.map(|m| m.0),
                "created_date": c.created_at.map(|m| m.to_date()),
                "inbox_id": c.inbox_id.map(|i| i.0),
                "playbook_id": c.related_playbook_id.map(|p| p.0),
                "tags": c.conversation_tags.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
                "message_count": self.messages.len(),
            },
            "contact": contact,
            "agent": participants.first().cloned().unwrap_or(Value::Null),
            "participants": participants,
            "playbook": self.playbook.as_ref().map(|p| json!({"id": p.id.0, "name": p.name})),
            "attribution": self.attribution.clone().unwrap_or_default(),
            "meetings": meetings,
            "messages": messages,
            "transcript": format.render(text.clone()),
            "transcript_text": text,
        })
    }
}

/// A contact as templates read it (`contact.*`): the common attributes by their usual names,
/// and Drift's raw map under `attributes`.
pub(crate) fn contact_json(ct: &Contact) -> Value {
    let first = attr(ct, &["first_name", "firstName"]).map(str::to_owned);
    let last = attr(ct, &["last_name", "lastName"]).map(str::to_owned);
    let name = attr(ct, &["name", "display_name"]).map(str::to_owned);
    let (first, last) = match (first, last, &name) {
        (None, None, Some(n)) => match n.rsplit_once(' ') {
            Some((f, l)) => (Some(f.to_owned()), Some(l.to_owned())),
            None => (None, Some(n.clone())),
        },
        (f, l, _) => (f, l),
    };
    let linkedin = attr(ct, &["linkedin_url", "linkedin_handle", "linkedin"]).map(|h| {
        if h.starts_with("http") {
            h.to_owned()
        } else {
            format!("https://www.linkedin.com/{}", h.trim_start_matches('/'))
        }
    });
    json!({
        "id": ct.id.0,
        "email": attr(ct, &["email"]).map(str::to_lowercase),
        "first_name": first,
        "last_name": last,
        "name": name,
        "company": attr(ct, &["company", "employment_name", "company_name"]),
        "title": attr(ct, &["title", "employment_title", "job_title"]),
        "phone": attr(ct, &["phone", "phone_number"]),
        "city": attr(ct, &["city"]),
        "state": attr(ct, &["state", "region"]),
        "country": attr(ct, &["country"]),
        "linkedin": linkedin,
        "external_id": attr(ct, &["externalId", "external_id"]),
        "attributes": ct.attributes.0,
    })
}

/// The event type an HTTP sink's document carries: `meeting.booked` and `meeting.updated` for
/// the meeting events, `drift.EVENT` for the others.
pub fn event_type(event: &str) -> String {
    match event {
        "new_meeting" => "meeting.booked".into(),
        "meeting_updated" => "meeting.updated".into(),
        other => format!("drift.{other}"),
    }
}

/// Marks an open map in [`context_shape`]: any key below it may exist.
pub const OPEN: &str = "*";

/// The shape of [`ConversationBundle::context`]: every path a field template may name, with
/// [`OPEN`] where the keys are the customer's own (contact attributes). A test holds it
/// against a real context, so the two cannot drift apart.
pub fn context_shape() -> Value {
    let person = json!({"id": 0, "name": "", "email": ""});
    json!({
        "org_id": 0, "event": "", "type": "", "key": "",
        "conversation": {
            "id": 0, "status": "", "created_at": "", "updated_at": "", "created_at_ms": 0,
            "created_date": "", "inbox_id": 0, "playbook_id": 0, "tags": [], "message_count": 0,
        },
        "contact": {
            "id": 0, "email": "", "first_name": "", "last_name": "", "name": "", "company": "",
            "title": "", "phone": "", "city": "", "state": "", "country": "", "linkedin": "",
            "external_id": "", "attributes": OPEN,
        },
        "agent": person,
        "participants": [],
        "playbook": {"id": 0, "name": ""},
        "attribution": {
            "utm_source": "", "utm_medium": "", "utm_campaign": "", "utm_term": "",
            "utm_content": "", "landing_page": "", "referrer": "",
        },
        "meetings": [],
        "messages": [],
        "transcript": "",
        "transcript_text": "",
    })
}

/// Cuts `s` to at most `max` characters, saying so at the end.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    const MARK: &str = "\n[transcript truncated]";
    let keep = max.saturating_sub(MARK.chars().count());
    let mut out: String = s.chars().take(keep).collect();
    out.push_str(MARK);
    out
}
