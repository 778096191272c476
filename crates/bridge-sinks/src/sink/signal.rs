//! Lead signals: the moments sales acts on before a conversation closes (crm-apis.md §8). A
//! `contact_identified`, `playbook_goal_met` or `phone_captured` event upserts the contact or
//! lead in each CRM sink that routes it, with the sink's mapped fields and its
//! `signal_fields`, and sends HTTP sinks a signed `lead.identified`, `lead.goal_met` or
//! `lead.phone_captured`.
//!
//! A meeting booked from a calendar page has no conversation to deliver it: its `new_meeting`
//! and `meeting_updated` travel as signals about the person who booked, carrying the meeting.
//! The CRMs upsert the person and write the meeting (a HubSpot meeting, a Salesforce Event,
//! Marketo's meeting fields on the lead) keyed as a conversation's meetings are, and HTTP
//! sinks get a signed `meeting.booked` or `meeting.updated`.

use drift_types::{Contact, EpochMillis, OrgId, User};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::bundle::{BookedMeeting, OPEN, contact_json, meeting_shape};

/// One lead signal, with the contact it is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadSignal {
    /// The org.
    pub org: OrgId,
    /// The Drift event: `contact_identified`, `playbook_goal_met` or `phone_captured`.
    pub event: String,
    /// A stable id (the stored event's), so a retried HTTP delivery is the same message.
    pub id: String,
    /// When it happened (epoch ms).
    pub at_ms: i64,
    /// The contact, as Drift holds it now.
    pub contact: Contact,
    /// Where it happened and what it carried.
    #[serde(flatten)]
    pub details: SignalDetails,
    /// The meeting, for a meeting booked from a calendar page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting: Option<SignalMeeting>,
    /// Whether the contact opted out of emails, as the store holds it when the signal is
    /// delivered: a CRM record the signal writes carries the CRM's opt-out field.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub opted_out: bool,
}

/// A meeting booked from a calendar page, as the store holds it when the signal is delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalMeeting {
    /// Its latest known state.
    pub booked: BookedMeeting,
    /// The agent it is with, when Drift knows them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<User>,
}

/// What a signal's event says beside its contact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SignalDetails {
    /// The conversation it happened in.
    #[serde(default)]
    pub conversation_id: Option<i64>,
    /// The playbook.
    #[serde(default)]
    pub playbook_id: Option<i64>,
    /// Its name.
    #[serde(default)]
    pub playbook_name: Option<String>,
    /// The goal met.
    #[serde(default)]
    pub goal_id: Option<String>,
    /// Its name.
    #[serde(default)]
    pub goal_name: Option<String>,
    /// The phone number captured.
    #[serde(default)]
    pub phone: Option<String>,
}

/// The events that are lead signals.
pub const SIGNAL_EVENTS: [&str; 3] = ["contact_identified", "playbook_goal_met", "phone_captured"];

impl LeadSignal {
    /// The contact's email, lower-cased.
    pub fn email(&self) -> Option<String> {
        self.contact
            .attributes
            .email()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_lowercase)
    }

    /// The HTTP event type.
    pub fn type_name(&self) -> String {
        match self.event.as_str() {
            "contact_identified" => "lead.identified".into(),
            "playbook_goal_met" => "lead.goal_met".into(),
            "phone_captured" => "lead.phone_captured".into(),
            "new_meeting" | "meeting_updated" => super::bundle::event_type(&self.event),
            other => format!("lead.{other}"),
        }
    }

    /// What `signal_fields` and the fields map read: `org_id`, `event`, `type`, `key`,
    /// `contact.*` (as in a conversation), `signal.*` and `meeting.*` (as an item of a
    /// conversation's `meetings`; null but for a meeting booked from a calendar page).
    pub fn context(&self) -> Value {
        let mut signal = serde_json::to_value(&self.details).unwrap_or_default();
        signal["type"] = self.type_name().into();
        signal["at"] = EpochMillis(self.at_ms).to_iso8601().into();
        let meeting = self.meeting.as_ref().map_or(Value::Null, |m| {
            m.booked.context(self.org, m.agent.as_ref())
        });
        json!({
            "org_id": self.org.0,
            "event": self.event,
            "type": self.type_name(),
            "key": self.id,
            "contact": contact_json(&self.contact),
            "signal": signal,
            "meeting": meeting,
        })
    }
}

/// The shape of [`LeadSignal::context`] (a test holds one against the other).
pub fn signal_shape() -> Value {
    let mut contact = super::bundle::context_shape()["contact"].clone();
    contact["attributes"] = json!(OPEN);
    json!({
        "org_id": 0, "event": "", "type": "", "key": "",
        "contact": contact,
        "signal": {"type": "", "at": "", "conversation_id": 0, "playbook_id": 0,
            "playbook_name": "", "goal_id": "", "goal_name": "", "phone": ""},
        "meeting": meeting_shape(),
    })
}
