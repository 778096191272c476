//! Lead signals: the moments sales acts on before a conversation closes (crm-apis.md §8). A
//! `contact_identified`, `playbook_goal_met` or `phone_captured` event upserts the contact or
//! lead in each CRM sink that routes it, with the sink's mapped fields and its
//! `signal_fields`, and sends HTTP sinks a signed `lead.identified`, `lead.goal_met` or
//! `lead.phone_captured`.

use drift_types::{Contact, EpochMillis, OrgId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::bundle::{OPEN, contact_json};

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
            other => format!("lead.{other}"),
        }
    }

    /// What `signal_fields` and the fields map read: `org_id`, `event`, `type`, `key`,
    /// `contact.*` (as in a conversation) and `signal.*`.
    pub fn context(&self) -> Value {
        let mut signal = serde_json::to_value(&self.details).unwrap_or_default();
        signal["type"] = self.type_name().into();
        signal["at"] = EpochMillis(self.at_ms).to_iso8601().into();
        json!({
            "org_id": self.org.0,
            "event": self.event,
            "type": self.type_name(),
            "key": self.id,
            "contact": contact_json(&self.contact),
            "signal": signal,
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
    })
}
