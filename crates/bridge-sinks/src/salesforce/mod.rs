//! Salesforce: the person is the Contact with the email when one exists (its shared fields
//! are updated), else the open Lead with that email (updated by id), else a Lead upserted by
//! the `lead_key_field` external id holding the lower-cased email — an atomic create-or-update,
//! so two conversations of one new person cannot make two Leads. The conversation is a
//! completed Task upserted by the `task_key_field` external id (`org-conversation`): a re-push
//! or a retry after a crash updates the same Task.

mod client;

use drift_types::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::outbound::OutboundGuard;
use crate::sink::{
    CommonSpec, ConversationBundle, Delivered, FieldMap, Prior, Sink, SinkError, TemplateError,
    TranscriptFormat, truncate,
};
use client::Api;

/// Task.Description holds at most 32,000 characters.
const DESCRIPTION_MAX: usize = 32_000;

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
    /// Task fields: overrides of the defaults (`""` removes one).
    #[serde(default)]
    pub task_fields: std::collections::BTreeMap<String, String>,
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
const CONTACT_FIELDS: &[&str] = &["Email", "FirstName", "LastName", "Title", "Phone"];

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

/// The built Salesforce sink.
#[derive(Debug)]
pub struct Salesforce {
    api: Api,
    lead: FieldMap,
    task: FieldMap,
    format: TranscriptFormat,
    lead_key: String,
    task_key: String,
}

impl Salesforce {
    /// Builds the sink.
    pub async fn new(
        spec: &SalesforceSpec,
        guard: &OutboundGuard,
        keep: Option<crate::sink::KeepSecret>,
    ) -> Result<Self, SinkError> {
        let (lead, task) = spec
            .templates()
            .map_err(|e| SinkError::rejected(e.to_string()))?;
        let login = crate::sink::checked(guard, &spec.login_url).await?;
        Ok(Salesforce {
            api: Api::new(
                crate::sink::client(guard)?,
                guard.clone(),
                login,
                spec,
                keep,
            ),
            lead,
            task,
            format: spec.common.transcript.unwrap_or(TranscriptFormat::Text),
            lead_key: spec.lead_key_field.clone(),
            task_key: spec.task_key_field.clone(),
        })
    }
}

/// Escapes a SOQL string literal.
fn soql(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

impl Sink for Salesforce {
    fn render(&self, b: &ConversationBundle) -> Value {
        let ctx = b.context(self.format);
        let mut task = self.task.render(&ctx);
        if let Some(Value::String(d)) = task.get_mut("Description") {
            *d = truncate(d, DESCRIPTION_MAX);
        }
        json!({"lead": self.lead.render(&ctx), "task": task})
    }

    async fn deliver(
        &self,
        b: &ConversationBundle,
        doc: &Value,
        _prior: &Prior,
    ) -> Result<Delivered, SinkError> {
        let mut out = Delivered::default();
        let lead = doc
            .get("lead")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let who = match b.email() {
            Some(email) => Some(self.person(&email, lead, &mut out).await?),
            None => None,
        };
        let mut task = doc
            .get("task")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(id) = &who {
            task.insert("WhoId".into(), Value::String(id.clone()));
        }
        let key = format!("{}-{}", b.org.0, b.conversation.id.0);
        let (id, created) = self
            .api
            .upsert("Task", &self.task_key, &key, &Value::Object(task))
            .await?;
        if created {
            out.created += 1;
        } else {
            out.updated += 1;
        }
        out.external.insert("task".into(), id);
        Ok(out)
    }
}

impl Salesforce {
    /// The Contact or Lead for `email`, written with `lead`'s fields; its id.
    async fn person(
        &self,
        email: &str,
        mut lead: Map<String, Value>,
        out: &mut Delivered,
    ) -> Result<String, SinkError> {
        let e = soql(email);
        if let Some(id) = self
            .api
            .query_id(&format!(
                "SELECT Id FROM Contact WHERE Email = '{e}' LIMIT 1"
            ))
            .await?
        {
            let shared: Map<String, Value> = lead
                .iter()
                .filter(|(k, _)| CONTACT_FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            self.api
                .update("Contact", &id, &Value::Object(shared))
                .await?;
            out.updated += 1;
            out.external.insert("contact".into(), id.clone());
            return Ok(id);
        }
        if let Some(id) = self
            .api
            .query_id(&format!(
                "SELECT Id FROM Lead WHERE Email = '{e}' AND IsConverted = false LIMIT 1"
            ))
            .await?
        {
            lead.insert(self.lead_key.clone(), Value::String(email.to_owned()));
            self.api.update("Lead", &id, &Value::Object(lead)).await?;
            out.updated += 1;
            out.external.insert("lead".into(), id.clone());
            return Ok(id);
        }
        lead.remove(&self.lead_key);
        let (id, created) = self
            .api
            .upsert("Lead", &self.lead_key, email, &Value::Object(lead))
            .await?;
        if created {
            out.created += 1;
        } else {
            out.updated += 1;
        }
        out.external.insert("lead".into(), id.clone());
        Ok(id)
    }
}
