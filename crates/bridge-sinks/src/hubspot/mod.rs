//! HubSpot: the contact is upserted by email (batch upsert with `idProperty=email`, so never a
//! duplicate) and the conversation becomes a note associated with it (type 202). The note
//! carries the conversation key in a note property (default `drift_conversation_id`): a
//! re-push patches the stored note id, and an attempt that may have created a note before a
//! crash searches that property first. HubSpot's search index lags writes by seconds, so such
//! an attempt waits `search_lag_secs` from the earlier attempt before it creates.

mod client;
mod meetings;

use std::time::Duration;

use drift_types::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::outbound::OutboundGuard;
use crate::sink::{
    CommonSpec, ConversationBundle, Delivered, FieldMap, LeadSignal, Prior, Sink, SinkError,
    Template, TemplateError, TranscriptFormat, signal_fields, truncate,
};
use client::{Api, id_of};

/// HubSpot notes hold at most 65,536 characters.
const NOTE_MAX: usize = 65_536;
/// Note -> contact, HubSpot-defined.
const NOTE_TO_CONTACT: u32 = 202;

/// `[sinks.NAME]` with `kind = "hubspot"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSpotSpec {
    /// Shared settings.
    #[serde(flatten)]
    pub common: CommonSpec,
    /// API base (default `https://api.hubapi.com`).
    #[serde(default = "default_base")]
    pub base_url: String,
    /// Object path prefix: `/crm/v3/objects` or the dated `/crm/objects/2026-03`.
    #[serde(default = "default_prefix")]
    pub path_prefix: String,
    /// Private-app or OAuth access token (empty: from the vault).
    #[serde(default)]
    pub token: Secret,
    /// The custom note property holding the conversation key.
    #[serde(default = "default_note_property")]
    pub note_property: String,
    /// The note body template (the transcript comes in the sink's format).
    #[serde(default)]
    pub note_template: Option<String>,
    /// How long HubSpot's search may lag a create.
    #[serde(default = "default_lag")]
    pub search_lag_secs: u64,
    /// The contact property an email opt-out sets to `true` (a custom boolean property you
    /// create; HubSpot's subscription status needs a subscription id, see docs/PRIVACY.md).
    #[serde(default = "default_opt_out_property")]
    pub opt_out_property: String,
}

fn default_base() -> String {
    "https://api.hubapi.com".into()
}
fn default_prefix() -> String {
    "/crm/v3/objects".into()
}
fn default_note_property() -> String {
    "drift_conversation_id".into()
}
fn default_lag() -> u64 {
    10
}
fn default_opt_out_property() -> String {
    "drift_unsubscribed".into()
}

/// The contact fields mapped by default (LinkedIn has no standard HubSpot property: map
/// `{{contact.linkedin}}` to your own in `fields`).
pub const DEFAULT_FIELDS: &[(&str, &str)] = &[
    ("email", "{{contact.email}}"),
    ("firstname", "{{contact.first_name}}"),
    ("lastname", "{{contact.last_name}}"),
    ("company", "{{contact.company}}"),
    ("jobtitle", "{{contact.title}}"),
    ("phone", "{{contact.phone}}"),
    ("city", "{{contact.city}}"),
    ("state", "{{contact.state}}"),
    ("country", "{{contact.country}}"),
];

const DEFAULT_NOTE: &str = "<p><b>Drift conversation {{conversation.id}}</b> ({{conversation.status}}) \
with {{contact.name | contact.email | \"a visitor\"}}, agent {{agent.name | \"none\"}}, \
playbook {{playbook.name | \"none\"}}, started {{conversation.created_at}}</p>{{transcript}}";

impl HubSpotSpec {
    /// The parsed field map and note template.
    pub fn templates(&self) -> Result<(FieldMap, Template), TemplateError> {
        Ok((
            FieldMap::build(DEFAULT_FIELDS, &self.common.fields)?,
            Template::parse(self.note_template.as_deref().unwrap_or(DEFAULT_NOTE))?,
        ))
    }

    /// Settings problems beyond templates.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.note_property.trim().is_empty() {
            out.push("note_property is empty".into());
        }
        if self.opt_out_property.trim().is_empty() {
            out.push("opt_out_property is empty".into());
        }
        out
    }
}

/// The built HubSpot sink.
#[derive(Debug)]
pub struct HubSpot {
    api: Api,
    fields: FieldMap,
    signal_fields: FieldMap,
    note: Template,
    format: TranscriptFormat,
    note_property: String,
    search_lag: Duration,
    opt_out_property: String,
}

impl HubSpot {
    /// Builds the sink.
    pub async fn new(spec: &HubSpotSpec, guard: &OutboundGuard) -> Result<Self, SinkError> {
        let (fields, note) = spec
            .templates()
            .map_err(|e| SinkError::rejected(e.to_string()))?;
        let base = crate::crm_http::checked(guard, &spec.base_url).await?;
        Ok(HubSpot {
            api: Api {
                http: crate::crm_http::client(guard)?,
                objects: format!("{base}/{}", spec.path_prefix.trim_matches('/')),
                token: spec.token.clone(),
            },
            fields,
            signal_fields: spec
                .common
                .signal_map()
                .map_err(|e| SinkError::rejected(e.to_string()))?,
            note,
            format: spec.common.transcript.unwrap_or(TranscriptFormat::Html),
            note_property: spec.note_property.clone(),
            search_lag: Duration::from_secs(spec.search_lag_secs),
            opt_out_property: spec.opt_out_property.clone(),
        })
    }
}

impl Sink for HubSpot {
    fn render(&self, b: &ConversationBundle) -> Value {
        let ctx = b.context(self.format);
        let html = self.format == TranscriptFormat::Html;
        let body = truncate(&self.note.text(&ctx, html), NOTE_MAX);
        let mut note = Map::new();
        note.insert("hs_note_body".into(), Value::String(body));
        let at = b.conversation.created_at.map_or(0, |m| m.0);
        note.insert("hs_timestamp".into(), Value::String(at.to_string()));
        note.insert(self.note_property.clone(), Value::String(b.key()));
        let note = if !b.writes_record() {
            Value::Null
        } else {
            Value::Object(note)
        };
        let mut contact = self.fields.render(&ctx);
        if b.opted_out {
            contact.insert(self.opt_out_property.clone(), "true".into());
        }
        json!({"contact": contact, "note": note, "meetings": meetings::render(b)})
    }

    async fn deliver(
        &self,
        b: &ConversationBundle,
        doc: &Value,
        prior: &Prior,
    ) -> Result<Delivered, SinkError> {
        let mut out = Delivered::default();
        let props = doc.get("contact").cloned().unwrap_or(json!({}));
        let contact_id = match b.email() {
            Some(email) => Some(self.upsert_contact(&email, props, &mut out).await?),
            None => None,
        };
        if !doc["note"].is_null() {
            self.note(b, doc, prior, contact_id.as_deref(), &mut out)
                .await?;
        }
        self.write_meetings(doc, prior, contact_id.as_deref(), &mut out)
            .await?;
        Ok(out)
    }

    /// Deletes the notes and meetings we created, then erases the contacts with HubSpot's GDPR
    /// delete (crm-apis.md §7: a plain delete is restorable for 90 days, so it is not used).
    async fn erase(&self, r: &crate::sink::ErasureRequest) -> Result<u32, SinkError> {
        let mut n = 0;
        for id in r.ids_with_prefix("meeting:") {
            self.api
                .send(reqwest::Method::DELETE, &format!("meetings/{id}"), None)
                .await?;
            n += 1;
        }
        for id in r.ids("note") {
            // A 404 (`Ok(None)`): already gone.
            self.api
                .send(reqwest::Method::DELETE, &format!("notes/{id}"), None)
                .await?;
            n += 1;
        }
        for id in r.ids("contact") {
            self.api
                .send(
                    reqwest::Method::POST,
                    "contacts/gdpr-delete",
                    Some(&json!({"objectId": id})),
                )
                .await?;
            n += 1;
        }
        Ok(n)
    }

    fn render_signal(&self, s: &LeadSignal) -> Value {
        let mut contact = signal_fields(&self.fields, &self.signal_fields, s);
        if s.opted_out {
            contact.insert(self.opt_out_property.clone(), "true".into());
        }
        let mut doc = json!({ "contact": contact });
        if s.meeting.is_some() {
            doc["meetings"] = meetings::render_calendar(s);
        }
        doc
    }

    async fn signal(
        &self,
        s: &LeadSignal,
        doc: &Value,
        prior: &Prior,
    ) -> Result<Delivered, SinkError> {
        let mut out = Delivered::default();
        let contact_id = match s.email() {
            Some(email) => Some(
                self.upsert_contact(&email, doc["contact"].clone(), &mut out)
                    .await?,
            ),
            None => None,
        };
        self.write_meetings(doc, prior, contact_id.as_deref(), &mut out)
            .await?;
        Ok(out)
    }

    /// Sets the opt-out property on the contact with this email, when HubSpot has one.
    async fn opt_out(&self, o: &crate::sink::OptOut) -> Result<u32, SinkError> {
        let email: String = url::form_urlencoded::byte_serialize(o.email.as_bytes()).collect();
        let body = json!({"properties": {self.opt_out_property.clone(): "true"}});
        let found = self
            .api
            .send(
                reqwest::Method::PATCH,
                &format!("contacts/{email}?idProperty=email"),
                Some(&body),
            )
            .await?;
        Ok(u32::from(found.is_some()))
    }
}

impl HubSpot {
    /// Upserts the contact with `email` (batch upsert by email: never a duplicate); its id.
    /// Writes the meetings of `doc` on the contact, recording their ids in `out`.
    async fn write_meetings(
        &self,
        doc: &Value,
        prior: &Prior,
        contact: Option<&str>,
        out: &mut Delivered,
    ) -> Result<(), SinkError> {
        meetings::deliver(
            &self.api,
            &doc["meetings"],
            prior,
            contact,
            self.search_lag,
            out,
        )
        .await
    }

    async fn upsert_contact(
        &self,
        email: &str,
        props: Value,
        out: &mut Delivered,
    ) -> Result<String, SinkError> {
        let body = json!({"inputs": [{"id": email, "idProperty": "email", "properties": props}]});
        let r = self
            .api
            .send(reqwest::Method::POST, "contacts/batch/upsert", Some(&body))
            .await?
            .ok_or_else(|| SinkError::retry("contact upsert answered 404"))?;
        let first = r
            .get("results")
            .and_then(|x| x.get(0))
            .ok_or_else(|| SinkError::rejected(format!("contact upsert failed: {r}")))?;
        let id = id_of(first)
            .ok_or_else(|| SinkError::retry(format!("contact upsert without id: {r}")))?;
        if first.get("new").and_then(Value::as_bool) == Some(true) {
            out.created += 1;
        } else {
            out.updated += 1;
        }
        out.external.insert("contact".into(), id.clone());
        Ok(id)
    }

    /// Writes the conversation's note, associated with the contact.
    async fn note(
        &self,
        b: &ConversationBundle,
        doc: &Value,
        prior: &Prior,
        contact_id: Option<&str>,
        out: &mut Delivered,
    ) -> Result<(), SinkError> {
        let note = json!({"properties": doc.get("note").cloned().unwrap_or(json!({}))});
        let known = self
            .api
            .written_before(
                "notes",
                "note",
                (&self.note_property, &b.key()),
                prior,
                self.search_lag,
            )
            .await?;
        if let Some(id) = known {
            let path = format!("notes/{id}");
            if self
                .api
                .send(reqwest::Method::PATCH, &path, Some(&note))
                .await?
                .is_some()
            {
                out.updated += 1;
                out.external.insert("note".into(), id);
                return Ok(());
            }
            // Deleted in HubSpot since: create it again.
        }
        let mut create = note;
        let assoc: Vec<Value> = contact_id
            .iter()
            .map(|id| {
                json!({"to": {"id": id}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                        "associationTypeId": NOTE_TO_CONTACT}]})
            })
            .collect();
        create["associations"] = Value::Array(assoc);
        let r = self
            .api
            .send(reqwest::Method::POST, "notes", Some(&create))
            .await?
            .ok_or_else(|| SinkError::retry("note create answered 404"))?;
        let id = id_of(&r).ok_or_else(|| SinkError::retry(format!("note without id: {r}")))?;
        out.created += 1;
        out.external.insert("note".into(), id);
        Ok(())
    }
}
