//! `[sinks.NAME]` with `kind = "salesforce"`: settings, default field maps, limits.

use drift_types::Secret;
use serde::{Deserialize, Serialize};

use crate::sink::{CommonSpec, FieldMap, TemplateError};

/// Task.Description holds at most 32,000 characters.
pub(super) const DESCRIPTION_MAX: usize = 32_000;

/// `[sinks.NAME]` with `kind = "salesforce"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalesforceSpec {
    /// Shared settings (`fields` maps Lead fields).
    #[serde(flatten)]
    pub common: CommonSpec,
    /// Where tokens are refreshed (`https://login.salesforce.com` or the My Domain URL).
    #[serde(default = "default_login")]
    pub login_url: String,
    /// The connected app's consumer key.
    pub client_id: String,
    /// Its consumer secret (empty: from the vault).
    #[serde(default)]
    pub client_secret: Secret,
    /// The refresh token of the integration user (empty: from the vault, where a rotated
    /// one is also kept).
    #[serde(default)]
    pub refresh_token: Secret,
    /// REST API version.
    #[serde(default = "default_version")]
    pub api_version: String,
    /// External-id field on Lead holding the lower-cased email.
    #[serde(default = "default_lead_key")]
    pub lead_key_field: String,
    /// External-id field on Task holding `org-conversation`.
    #[serde(default = "default_task_key")]
    pub task_key_field: String,
    /// The external-id field on Event holding `org-meeting` (a meeting booked in a chat).
    #[serde(default = "default_event_key")]
    pub event_key_field: String,
    /// Task fields: overrides of the defaults (`""` removes one).
    #[serde(default)]
    pub task_fields: std::collections::BTreeMap<String, String>,
    /// What a canceled meeting's Event becomes: `keep` (its subject says `Canceled:`) or
    /// `delete`.
    #[serde(default)]
    pub canceled_meetings: CanceledMeetings,
}

/// `canceled_meetings`: what a canceled meeting's Event becomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CanceledMeetings {
    /// Kept, its subject prefixed `Canceled:` (the calendar shows what happened).
    #[default]
    Keep,
    /// Deleted (to the recycle bin), so calendars and reports show only what will happen.
    Delete,
}

fn default_login() -> String {
    "https://login.salesforce.com".into()
}
fn default_version() -> String {
    "v59.0".into()
}
fn default_lead_key() -> String {
    "Drift_Email__c".into()
}
fn default_event_key() -> String {
    "Drift_Meeting_Key__c".into()
}
fn default_task_key() -> String {
    "Drift_Conversation_Id__c".into()
}

/// Lead fields mapped by default. `LastName` and `Company` are required by Salesforce.
pub const DEFAULT_FIELDS: &[(&str, &str)] = &[
    ("Email", "{{contact.email}}"),
    ("FirstName", "{{contact.first_name}}"),
    (
        "LastName",
        "{{contact.last_name | contact.name | \"[not provided]\"}}",
    ),
    ("Company", "{{contact.company | \"[not provided]\"}}"),
    ("Title", "{{contact.title}}"),
    ("Phone", "{{contact.phone}}"),
    ("City", "{{contact.city}}"),
    ("State", "{{contact.state}}"),
    ("Country", "{{contact.country}}"),
    ("LeadSource", "Drift"),
];

/// Lead fields that Contact shares (written when the person is a Contact).
pub(super) const CONTACT_FIELDS: &[&str] = &["Email", "FirstName", "LastName", "Title", "Phone"];

/// Task fields mapped by default.
pub const DEFAULT_TASK_FIELDS: &[(&str, &str)] = &[
    ("Subject", "Drift conversation {{conversation.id}}"),
    (
        "Description",
        "Drift conversation {{conversation.id}} ({{conversation.status}}), agent {{agent.name | \"none\"}}, \
playbook {{playbook.name | \"none\"}}, started {{conversation.created_at}}\n\n{{transcript}}",
    ),
    ("ActivityDate", "{{conversation.created_date}}"),
    ("Status", "Completed"),
    ("Priority", "Normal"),
];

impl SalesforceSpec {
    /// The parsed Lead and Task field maps.
    pub fn templates(&self) -> Result<(FieldMap, FieldMap), TemplateError> {
        Ok((
            FieldMap::build(DEFAULT_FIELDS, &self.common.fields)?,
            FieldMap::build(DEFAULT_TASK_FIELDS, &self.task_fields)?,
        ))
    }

    /// Settings problems beyond templates.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.client_id.trim().is_empty() {
            out.push("client_id is empty".into());
        }
        if !self.api_version.starts_with('v') {
            out.push(format!(
                "api_version {:?} should look like v59.0",
                self.api_version
            ));
        }
        out
    }
}
