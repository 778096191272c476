//! The records each CRM simulator holds, and its bookkeeping (ids, sessions, windows).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use serde_json::{Value, json};

use super::common::{Record, Window};

/// HubSpot's records.
#[derive(Debug, Default)]
pub struct HubSpotData {
    /// Contacts by id.
    pub contacts: BTreeMap<u64, Record>,
    /// Notes by id.
    pub notes: BTreeMap<u64, Record>,
    /// Meetings by id.
    pub meetings: BTreeMap<u64, Record>,
    pub(crate) by_email: HashMap<String, u64>,
    /// Emails GDPR-deleted before any contact had them: never to be created.
    pub(crate) blocklist: HashSet<String>,
    pub(crate) next_id: u64,
    pub(crate) ten_secondly: Window,
    pub(crate) secondly: Window,
}

impl HubSpotData {
    pub(crate) fn id(&mut self) -> u64 {
        self.next_id += 1;
        1000 + self.next_id
    }

    pub(crate) fn table(&mut self, object: &str) -> Option<&mut BTreeMap<u64, Record>> {
        match object {
            "contacts" => Some(&mut self.contacts),
            "notes" => Some(&mut self.notes),
            "meetings" => Some(&mut self.meetings),
            _ => None,
        }
    }

    /// Removes an object for good: a contact leaves the email index and every note's
    /// associations. False when there was none.
    pub(crate) fn remove(&mut self, object: &str, id: u64) -> bool {
        if self.table(object).and_then(|t| t.remove(&id)).is_none() {
            return false;
        }
        if object == "contacts" {
            self.by_email.retain(|_, v| *v != id);
            for n in self.notes.values_mut().chain(self.meetings.values_mut()) {
                n.associations.retain(|a| a != &id.to_string());
            }
        }
        true
    }

    /// As JSON.
    pub fn dump(&self) -> Value {
        json!({"contacts": self.contacts.values().collect::<Vec<_>>(),
               "notes": self.notes.values().collect::<Vec<_>>(),
               "meetings": self.meetings.values().collect::<Vec<_>>()})
    }
}

const PREFIX: &[(&str, &str)] = &[
    ("Lead", "00Q"),
    ("Contact", "003"),
    ("Task", "00T"),
    ("Event", "00U"),
];

/// Salesforce's records.
#[derive(Debug, Default)]
pub struct SalesforceData {
    /// Records by object, then id.
    pub objects: BTreeMap<String, BTreeMap<String, Record>>,
    pub(crate) sessions: HashSet<String>,
    pub(crate) next: u64,
    pub(crate) used: u64,
    pub(crate) sessions_issued: u64,
}

impl SalesforceData {
    /// As JSON.
    pub fn dump(&self) -> Value {
        let mut out = serde_json::Map::new();
        for o in ["Lead", "Contact", "Task", "Event"] {
            let recs: Vec<&Record> = self
                .objects
                .get(o)
                .map(|m| m.values().collect())
                .unwrap_or_default();
            out.insert(o.to_owned(), json!(recs));
        }
        out.insert("sessions_issued".into(), json!(self.sessions_issued));
        Value::Object(out)
    }

    pub(crate) fn new_id(&mut self, object: &str) -> String {
        self.next += 1;
        let p = PREFIX
            .iter()
            .find(|(o, _)| *o == object)
            .map_or("a00", |(_, p)| p);
        format!("{p}{:015}", self.next)
    }
}

/// Marketo's records.
#[derive(Debug, Default)]
pub struct MarketoData {
    /// Leads by id.
    pub leads: BTreeMap<u64, Record>,
    pub(crate) by_email: HashMap<String, u64>,
    pub(crate) token: Option<(String, Instant)>,
    pub(crate) window: Window,
    pub(crate) next: u64,
}

impl MarketoData {
    /// As JSON.
    pub fn dump(&self) -> Value {
        json!({"leads": self.leads.values().collect::<Vec<_>>()})
    }
}
