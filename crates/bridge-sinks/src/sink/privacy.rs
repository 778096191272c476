//! What a sink is told of a person's privacy requests.
//!
//! An erasure carries ids only, never the erased data: a CRM sink deletes the records our
//! deliveries created (their ids came back in the delivery records); the HTTP sink sends a
//! signed `contact.erased` event. Deleting is idempotent: a record that is already gone
//! counts as deleted, so a retried erase job changes nothing.
//!
//! An opt-out (Drift's `user_unsubscribed`) carries the email, the key every CRM finds the
//! person by: the sink sets its opt-out field on the records that exist (it creates none).
//! Setting a flag twice is the same as once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One erasure, as one sink is told it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErasureRequest {
    /// driftbridge's erasure id (`driftbridge gdpr log`).
    pub erasure: i64,
    /// The Drift org.
    pub org: i64,
    /// The person's Drift contact ids.
    #[serde(default)]
    pub contacts: Vec<i64>,
    /// Their Drift conversation ids.
    #[serde(default)]
    pub conversations: Vec<i64>,
    /// The CRM ids our deliveries to this sink recorded, by role (`contact`, `note`, `lead`,
    /// `task`), each once.
    #[serde(default)]
    pub records: BTreeMap<String, Vec<String>>,
}

impl ErasureRequest {
    /// The recorded ids of one role.
    pub fn ids(&self, role: &str) -> &[String] {
        self.records.get(role).map_or(&[], Vec::as_slice)
    }

    /// The recorded ids of every role that starts with `prefix` (`meeting:` has one role per
    /// meeting).
    pub fn ids_with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a String> + 'a {
        self.records
            .iter()
            .filter(move |(role, _)| role.starts_with(prefix))
            .flat_map(|(_, ids)| ids)
    }
}

/// An email opt-out, as one sink is told it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OptOut {
    /// The Drift org.
    pub org: i64,
    /// The Drift contact, when the event named one.
    #[serde(default)]
    pub contact: Option<i64>,
    /// The email that opted out (lower-cased).
    pub email: String,
    /// When (epoch ms).
    pub at: i64,
}
