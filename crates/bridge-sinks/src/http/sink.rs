//! The HTTP sink: a JSON document from the bundle by a template, POSTed signed.

use drift_types::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::endpoint::{DeliveryError, HttpEndpoint};
use super::sign::WebhookSecret;
use crate::outbound::OutboundGuard;
use crate::sink::{
    CommonSpec, ConversationBundle, Delivered, JsonTemplate, LeadSignal, Prior, Sink, SinkError,
    TemplateError, TranscriptFormat, content_hash,
};

/// `[sinks.NAME]` with `kind = "http"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// Shared settings (`fields`, when given, replace the document's `data`).
    #[serde(flatten)]
    pub common: CommonSpec,
    /// The endpoint.
    pub url: String,
    /// The Standard Webhooks secret, `whsec_...` (empty: from the vault).
    #[serde(default)]
    pub secret: Secret,
    /// The whole document as a template (overrides the default and `fields`).
    #[serde(default)]
    pub template: Option<Value>,
}

/// The default document: Standard Webhooks' envelope around the whole bundle.
pub fn default_template() -> Value {
    json!({
        "type": "{{type}}",
        "timestamp": "{{conversation.updated_at | conversation.created_at}}",
        "data": {
            "org_id": "{{org_id}}",
            "key": "{{key}}",
            "conversation": "{{conversation}}",
            "contact": "{{contact}}",
            "agent": "{{agent}}",
            "participants": "{{participants}}",
            "playbook": "{{playbook}}",
            "attribution": "{{attribution}}",
            "meetings": "{{meetings}}",
            "messages": "{{messages}}",
            "transcript": "{{transcript}}",
        }
    })
}

impl HttpSpec {
    /// The parsed document template.
    pub fn templates(&self) -> Result<JsonTemplate, TemplateError> {
        let doc = match (&self.template, self.common.fields.is_empty()) {
            (Some(t), _) => t.clone(),
            (None, true) => default_template(),
            (None, false) => {
                let mut t = default_template();
                t["data"] = Value::Object(
                    self.common
                        .fields
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect(),
                );
                t
            }
        };
        JsonTemplate::parse(&doc)
    }

    /// Settings problems beyond templates.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.secret.is_empty()
            && let Err(e) = WebhookSecret::parse(self.secret.expose())
        {
            out.push(format!("secret: {e}"));
        }
        if url::Url::parse(&self.url).is_err() {
            out.push(format!("url {:?} is not a URL", self.url));
        }
        out
    }
}

/// The built HTTP sink.
#[derive(Debug)]
pub struct HttpSink {
    endpoint: HttpEndpoint,
    template: JsonTemplate,
    format: TranscriptFormat,
}

impl HttpSink {
    /// Posts `doc` signed as message `id`; the message id and the answer's status are recorded.
    async fn post(&self, id: String, doc: &Value) -> Result<Delivered, SinkError> {
        let body = serde_json::to_vec(doc).unwrap_or_default();
        let status = self.send(&id, &body).await?;
        let mut out = Delivered {
            created: 1,
            ..Delivered::default()
        };
        out.external.insert("webhook_id".into(), id);
        out.external.insert("status".into(), status.to_string());
        Ok(out)
    }

    /// Builds the sink.
    pub async fn new(spec: &HttpSpec, guard: &OutboundGuard) -> Result<Self, SinkError> {
        let template = spec
            .templates()
            .map_err(|e| SinkError::rejected(e.to_string()))?;
        let secret = WebhookSecret::parse(spec.secret.expose())
            .map_err(|e| SinkError::rejected(format!("secret: {e}")))?;
        let endpoint = HttpEndpoint::new(&spec.url, secret, guard)
            .await
            .map_err(|e| SinkError::rejected(e.to_string()))?;
        Ok(HttpSink {
            endpoint,
            template,
            format: spec.common.transcript.unwrap_or(TranscriptFormat::Text),
        })
    }
}

impl Sink for HttpSink {
    fn render(&self, b: &ConversationBundle) -> Value {
        self.template.render(&b.context(self.format))
    }

    /// `lead.identified`, `lead.goal_met` or `lead.phone_captured` with the contact and the
    /// signal; `meeting.booked` or `meeting.updated` for a meeting booked from a calendar
    /// page, with the meeting too.
    fn render_signal(&self, s: &LeadSignal) -> Value {
        let mut ctx = s.context();
        let mut doc = json!({
            "type": s.type_name(),
            "timestamp": ctx["signal"]["at"].take(),
            "data": {"org_id": s.org.0, "key": s.id, "contact": ctx["contact"].take(),
                "signal": ctx["signal"].take()},
        });
        if s.meeting.is_some() {
            doc["data"]["meeting"] = ctx["meeting"].take();
        }
        doc
    }

    async fn signal(
        &self,
        s: &LeadSignal,
        doc: &Value,
        _prior: &Prior,
    ) -> Result<Delivered, SinkError> {
        // One id per signal: a retry is the same message.
        let id = format!(
            "msg_{}",
            &content_hash(&json!(["signal", s.org.0, s.id]))[..32]
        );
        self.post(id, doc).await
    }

    async fn deliver(
        &self,
        b: &ConversationBundle,
        doc: &Value,
        _prior: &Prior,
    ) -> Result<Delivered, SinkError> {
        // One id per conversation version: stable across retries, new when the content changes.
        let id = format!(
            "msg_{}",
            &content_hash(&json!([b.key(), content_hash(doc)]))[..32]
        );
        self.post(id, doc).await
    }

    /// Sends a signed `contact.erased` event with ids only; its webhook id is the erasure's,
    /// so a retry is the same message to the receiver.
    async fn erase(&self, r: &crate::sink::ErasureRequest) -> Result<u32, SinkError> {
        let body = json!({
            "type": "contact.erased",
            "timestamp": drift_types::now_ms(),
            "data": {"erasure_id": r.erasure, "org_id": r.org, "contact_ids": r.contacts,
                     "conversation_ids": r.conversations},
        });
        let id = format!("msg_erasure_{}_{}", r.org, r.erasure);
        self.send(&id, &serde_json::to_vec(&body).unwrap_or_default())
            .await?;
        Ok(1)
    }

    /// Sends a signed `contact.unsubscribed` event; its webhook id is stable across retries.
    async fn opt_out(&self, o: &crate::sink::OptOut) -> Result<u32, SinkError> {
        let body = json!({
            "type": "contact.unsubscribed",
            "timestamp": o.at,
            "data": {"org_id": o.org, "contact_id": o.contact, "email": o.email},
        });
        let id = format!(
            "msg_{}",
            &content_hash(&json!(["opt_out", o.org, o.email, o.at]))[..32]
        );
        self.send(&id, &serde_json::to_vec(&body).unwrap_or_default())
            .await?;
        Ok(1)
    }
}

impl HttpSink {
    /// POSTs `body` signed for `id` now; the endpoint's status on a 2xx.
    async fn send(&self, id: &str, body: &[u8]) -> Result<u16, SinkError> {
        let ts = drift_types::now_ms() / 1000;
        self.endpoint
            .deliver(id, ts, body)
            .await
            .map_err(sink_error)
    }
}

/// A delivery failure, classified for the queue.
fn sink_error(e: DeliveryError) -> SinkError {
    match e {
        DeliveryError::Retry {
            status: Some(429),
            retry_after,
            message,
        } => SinkError::throttled(
            retry_after.unwrap_or(std::time::Duration::from_secs(5)),
            format!("the endpoint answered 429: {message}"),
        )
        .with_status(429),
        DeliveryError::Retry {
            retry_after,
            status,
            message,
        } => SinkError::retry_after(
            retry_after,
            format!(
                "the endpoint answered {}: {message}",
                status.map_or("nothing".to_owned(), |s| s.to_string())
            ),
        )
        .with_status(status),
        e => SinkError::rejected(e.to_string()).with_status(e.status()),
    }
}
