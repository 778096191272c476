//! Salesforce: the person is the Contact with the email when one exists (its shared fields
//! are updated), else the open Lead with that email (updated by id), else a Lead upserted by
//! the `lead_key_field` external id holding the lower-cased email — an atomic create-or-update,
//! so two conversations of one new person cannot make two Leads. The conversation is a
//! completed Task upserted by the `task_key_field` external id (`org-conversation`): a re-push
//! or a retry after a crash updates the same Task. A meeting, booked in a conversation or
//! from a calendar page, is an Event on the person, upserted by `event_key_field`.

mod client;
mod config;

use drift_types::OrgId;
use serde_json::{Map, Value, json};

use crate::outbound::OutboundGuard;
use crate::sink::{
    BookedMeeting, ConversationBundle, Delivered, FieldMap, LeadSignal, Prior, Sink, SinkError,
    TranscriptFormat, signal_fields, truncate,
};
use client::{Api, soql};
use config::{CONTACT_FIELDS, DESCRIPTION_MAX};
pub use config::{CanceledMeetings, DEFAULT_FIELDS, DEFAULT_TASK_FIELDS, SalesforceSpec};

/// The built Salesforce sink.
#[derive(Debug)]
pub struct Salesforce {
    api: Api,
    lead: FieldMap,
    signal_fields: FieldMap,
    task: FieldMap,
    format: TranscriptFormat,
    lead_key: String,
    task_key: String,
    event_key: String,
    canceled: CanceledMeetings,
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
        let login = crate::crm_http::checked(guard, &spec.login_url).await?;
        Ok(Salesforce {
            api: Api::new(
                crate::crm_http::client(guard)?,
                guard.clone(),
                login,
                spec,
                keep,
            ),
            lead,
            signal_fields: spec
                .common
                .signal_map()
                .map_err(|e| SinkError::rejected(e.to_string()))?,
            task,
            format: spec.common.transcript.unwrap_or(TranscriptFormat::Text),
            lead_key: spec.lead_key_field.clone(),
            task_key: spec.task_key_field.clone(),
            event_key: spec.event_key_field.clone(),
            canceled: spec.canceled_meetings,
        })
    }
}

/// The standard field, on Contacts and Leads, of a person who opted out of emails.
const OPTED_OUT: &str = "HasOptedOutOfEmail";

impl Sink for Salesforce {
    fn render(&self, b: &ConversationBundle) -> Value {
        let ctx = b.context(self.format);
        let mut task = self.task.render(&ctx);
        if let Some(Value::String(d)) = task.get_mut("Description") {
            *d = truncate(d, DESCRIPTION_MAX);
        }
        let task = if !b.writes_record() {
            Value::Null
        } else {
            Value::Object(task)
        };
        let mut lead = self.lead.render(&ctx);
        if b.opted_out {
            lead.insert(OPTED_OUT.into(), true.into());
        }
        json!({"lead": lead, "task": task, "events": events(b, self.canceled)})
    }

    async fn deliver(
        &self,
        b: &ConversationBundle,
        doc: &Value,
        prior: &Prior,
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
        if let Some(task) = doc.get("task").and_then(Value::as_object) {
            let mut task = task.clone();
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
        }
        self.write_events(&doc["events"], who.as_deref(), prior, &mut out)
            .await?;
        Ok(out)
    }

    /// Deletes the Tasks, then the Lead or Contact, our deliveries wrote. Deleted records sit
    /// in Salesforce's recycle bin for 15 days (docs/PRIVACY.md).
    async fn erase(&self, r: &crate::sink::ErasureRequest) -> Result<u32, SinkError> {
        let mut n = 0;
        for id in r.ids_with_prefix("event:") {
            self.api.delete("Event", id).await?;
            n += 1;
        }
        for (role, object) in [("task", "Task"), ("lead", "Lead"), ("contact", "Contact")] {
            for id in r.ids(role) {
                self.api.delete(object, id).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn render_signal(&self, s: &LeadSignal) -> Value {
        let mut lead = signal_fields(&self.lead, &self.signal_fields, s);
        if s.opted_out {
            lead.insert(OPTED_OUT.into(), true.into());
        }
        let mut doc = json!({ "lead": lead });
        if let Some(c) = &s.meeting {
            use crate::sink::meetings::{calendar_body, calendar_title};
            doc["events"] = event(s.org, &c.booked, self.canceled, || {
                (calendar_title(c), calendar_body(c))
            })
            .into_iter()
            .collect();
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
        let who = match s.email() {
            Some(email) => {
                let lead = doc["lead"].as_object().cloned().unwrap_or_default();
                Some(self.person(&email, lead, &mut out).await?)
            }
            None => None,
        };
        self.write_events(&doc["events"], who.as_deref(), prior, &mut out)
            .await?;
        Ok(out)
    }

    /// Sets the standard `HasOptedOutOfEmail` on the Contact and the Lead with this email.
    async fn opt_out(&self, o: &crate::sink::OptOut) -> Result<u32, SinkError> {
        let e = soql(&o.email);
        let mut n = 0;
        for object in ["Contact", "Lead"] {
            let q = format!("SELECT Id FROM {object} WHERE Email = '{e}' LIMIT 1");
            if let Some(id) = self.api.query_id(&q).await? {
                self.api
                    .update(object, &id, &json!({ OPTED_OUT: true }))
                    .await?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// The conversation's meetings as Events (crm-apis.md §8).
fn events(b: &ConversationBundle, canceled: CanceledMeetings) -> Value {
    use crate::sink::meetings::{body, title};
    b.meetings
        .iter()
        .filter_map(|m| event(b.org, m, canceled, || (title(b, m), body(b, m))))
        .collect()
}

/// A meeting as an Event, keyed `org-key` like Tasks; a cancellation keeps the Event with its
/// subject saying so, or with `canceled_meetings = "delete"` deletes it (`{"key", "delete":
/// true}`). `text` gives the subject and the description.
fn event(
    org: OrgId,
    m: &BookedMeeting,
    canceled: CanceledMeetings,
    text: impl FnOnce() -> (String, String),
) -> Option<Value> {
    let key = format!("{}-{}", org.0, m.key);
    if canceled == CanceledMeetings::Delete && m.status == "canceled" {
        return Some(json!({"key": key, "delete": true}));
    }
    let (start, end) = crate::sink::meetings::times(m)?;
    let (subject, description) = text();
    Some(json!({"key": key, "fields": {
        "Subject": truncate(&subject, 255),
        "StartDateTime": start,
        "EndDateTime": end,
        "Description": truncate(&description, DESCRIPTION_MAX),
    }}))
}

impl Salesforce {
    /// Writes (or deletes) the Events of `events` on the person `who`, recording their ids.
    async fn write_events(
        &self,
        events: &Value,
        who: Option<&str>,
        prior: &Prior,
        out: &mut Delivered,
    ) -> Result<(), SinkError> {
        for m in events.as_array().into_iter().flatten() {
            let key = m["key"].as_str().unwrap_or_default();
            if m["delete"] == true {
                self.delete_event(key, prior).await?;
                continue;
            }
            let mut event = m["fields"].as_object().cloned().unwrap_or_default();
            if let Some(id) = who {
                event.insert("WhoId".into(), Value::String(id.to_owned()));
            }
            let (id, created) = self
                .api
                .upsert("Event", &self.event_key, key, &Value::Object(event))
                .await?;
            if created {
                out.created += 1;
            } else {
                out.updated += 1;
            }
            out.external.insert(format!("event:{key}"), id);
        }
        Ok(())
    }

    /// Deletes the Event of a canceled meeting: the one an earlier delivery recorded, else
    /// the one its key finds (an attempt that never recorded); none is fine.
    async fn delete_event(&self, key: &str, prior: &Prior) -> Result<(), SinkError> {
        let id = match prior.external.get(&format!("event:{key}")) {
            Some(id) => Some(id.clone()),
            None => {
                self.api
                    .query_id(&format!(
                        "SELECT Id FROM Event WHERE {} = '{}' LIMIT 1",
                        self.event_key,
                        soql(key)
                    ))
                    .await?
            }
        };
        match id {
            Some(id) => self.api.delete("Event", &id).await,
            None => Ok(()),
        }
    }

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
