//! Marketo Engage: the lead is synced with `createOrUpdate` on `email`, and the conversation
//! is written into lead fields (default `driftLastConversationId`, `driftLastTranscript`;
//! create them in Marketo or map your own). A custom activity would be append-only, with no
//! way to look it up before creating, so a retry after a crash could duplicate it; lead
//! fields are idempotent. Marketo's limits are kept on our side — at most `max_concurrency`
//! calls at once and `calls_per_20s` per 20 s — and writes to one email are serialised,
//! because concurrent upserts of one key can duplicate the lead (crm-apis.md §3).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex as StdMutex;
use std::time::{Duration, Instant};

use drift_types::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::{Mutex, Semaphore};

use crate::crm_http::{Reply, by_status, exchange};
use crate::outbound::OutboundGuard;
use crate::sink::{
    BookedMeeting, CommonSpec, ConversationBundle, Delivered, FieldMap, LeadSignal, Prior, Sink,
    SinkError, TemplateError, TranscriptFormat, signal_fields,
};

/// `[sinks.NAME]` with `kind = "marketo"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketoSpec {
    /// Shared settings (`fields` maps lead fields, conversation fields included).
    #[serde(flatten)]
    pub common: CommonSpec,
    /// `https://<Munchkin-ID>.mktorest.com` (identity and rest live under it).
    pub base_url: String,
    /// The API-only user's client id.
    pub client_id: String,
    /// Its client secret (empty: from the vault).
    #[serde(default)]
    pub client_secret: Secret,
    /// Calls at once (Marketo allows 10).
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// Calls per 20 seconds (Marketo allows 100).
    #[serde(default = "default_rate")]
    pub calls_per_20s: u32,
}

fn default_concurrency() -> usize {
    10
}
fn default_rate() -> u32 {
    100
}

/// Lead fields mapped by default (REST names).
pub const DEFAULT_FIELDS: &[(&str, &str)] = &[
    ("email", "{{contact.email}}"),
    ("firstName", "{{contact.first_name}}"),
    ("lastName", "{{contact.last_name}}"),
    ("company", "{{contact.company}}"),
    ("title", "{{contact.title}}"),
    ("phone", "{{contact.phone}}"),
    ("city", "{{contact.city}}"),
    ("state", "{{contact.state}}"),
    ("country", "{{contact.country}}"),
    ("driftLastConversationId", "{{key}}"),
    ("driftLastTranscript", "{{transcript}}"),
];

impl MarketoSpec {
    /// The parsed field map.
    pub fn templates(&self) -> Result<FieldMap, TemplateError> {
        FieldMap::build(DEFAULT_FIELDS, &self.common.fields)
    }

    /// Settings problems beyond templates.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.client_id.trim().is_empty() {
            out.push("client_id is empty".into());
        }
        if self.max_concurrency == 0 || self.calls_per_20s == 0 {
            out.push("max_concurrency and calls_per_20s must be at least 1".into());
        }
        out
    }
}

#[derive(Debug)]
struct Token {
    value: Secret,
    until: Instant,
}

/// The built Marketo sink.
#[derive(Debug)]
pub struct Marketo {
    http: reqwest::Client,
    base: String,
    client_id: String,
    client_secret: Secret,
    fields: FieldMap,
    signal_fields: FieldMap,
    format: TranscriptFormat,
    token: Mutex<Option<Token>>,
    calls: Semaphore,
    window: StdMutex<VecDeque<Instant>>,
    per_20s: usize,
    keys: StdMutex<HashMap<String, Arc<Mutex<()>>>>,
}

const WINDOW: Duration = Duration::from_secs(20);
/// Marketo counts a call when it arrives, we when we send it: a second of slack keeps
/// network jitter from turning the last call of a window into a 606.
const PACE_WINDOW: Duration = Duration::from_secs(21);

impl Marketo {
    /// Builds the sink.
    pub async fn new(spec: &MarketoSpec, guard: &OutboundGuard) -> Result<Self, SinkError> {
        let fields = spec
            .templates()
            .map_err(|e| SinkError::rejected(e.to_string()))?;
        Ok(Marketo {
            http: crate::crm_http::client(guard)?,
            base: crate::crm_http::checked(guard, &spec.base_url).await?,
            client_id: spec.client_id.clone(),
            client_secret: spec.client_secret.clone(),
            fields,
            signal_fields: spec
                .common
                .signal_map()
                .map_err(|e| SinkError::rejected(e.to_string()))?,
            format: spec.common.transcript.unwrap_or(TranscriptFormat::Text),
            token: Mutex::new(None),
            calls: Semaphore::new(spec.max_concurrency),
            window: StdMutex::new(VecDeque::new()),
            per_20s: spec.calls_per_20s as usize,
            keys: StdMutex::new(HashMap::new()),
        })
    }

    /// Waits for a slot in the 20-second window.
    async fn pace(&self) {
        loop {
            let wait = {
                let mut w = self.window.lock();
                let now = Instant::now();
                while w
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= PACE_WINDOW)
                {
                    w.pop_front();
                }
                if w.len() < self.per_20s {
                    w.push_back(now);
                    return;
                }
                PACE_WINDOW - now.duration_since(w[0])
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// One call inside Marketo's limits: a slot in the 20-second window and one of the
    /// concurrent calls, held until the answer is read.
    async fn call(&self, req: reqwest::RequestBuilder, what: &str) -> Result<Reply, SinkError> {
        self.pace().await;
        let _slot = self
            .calls
            .acquire()
            .await
            .map_err(|_| SinkError::retry("closed"))?;
        exchange(req, what, 8000).await
    }

    async fn token(&self, stale: bool) -> Result<Secret, SinkError> {
        let mut t = self.token.lock().await;
        if !stale
            && let Some(tok) = t.as_ref()
            && tok.until > Instant::now() + Duration::from_secs(60)
        {
            return Ok(tok.value.clone());
        }
        let req = self
            .http
            .post(format!("{}/identity/oauth/token", self.base))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.expose()),
            ]);
        let Reply { status, text, .. } = self.call(req, "Marketo identity").await?;
        if status != 200 {
            return Err(by_status(
                status,
                format!("Marketo identity answered {status}: {text}"),
            ));
        }
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| SinkError::retry(format!("Marketo identity answer unreadable: {e}")))?;
        let value = v
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| SinkError::retry("Marketo identity answer lacks access_token"))?;
        let secs = v.get("expires_in").and_then(Value::as_u64).unwrap_or(3599);
        *t = Some(Token {
            value: Secret::new(value),
            until: Instant::now() + Duration::from_secs(secs),
        });
        Ok(Secret::new(value))
    }

    /// Creates or updates the lead with `email` from `doc`'s fields, one write per email at a
    /// time.
    async fn upsert_lead(&self, email: &str, doc: &Value) -> Result<Delivered, SinkError> {
        let key_lock = {
            let mut keys = self.keys.lock();
            keys.retain(|_, l| Arc::strong_count(l) > 1);
            keys.entry(email.to_owned()).or_default().clone()
        };
        let _serial = key_lock.lock().await;
        let v = self.sync_lead(doc).await?;
        let r = v
            .get("result")
            .and_then(|r| r.get(0))
            .cloned()
            .unwrap_or(Value::Null);
        let mut out = Delivered::default();
        match r.get("status").and_then(Value::as_str) {
            Some("created") => out.created += 1,
            Some("updated") => out.updated += 1,
            _ => {
                let reason = r
                    .get("reasons")
                    .and_then(|x| x.get(0))
                    .map(|x| {
                        format!(
                            "{} {}",
                            x.get("code").and_then(Value::as_str).unwrap_or(""),
                            x.get("message").and_then(Value::as_str).unwrap_or("")
                        )
                    })
                    .unwrap_or_else(|| r.to_string());
                return Err(SinkError::rejected(format!(
                    "Marketo skipped the lead: {reason}"
                )));
            }
        }
        if let Some(id) = r.get("id") {
            out.external.insert("lead".into(), crate::sink::as_text(id));
        }
        Ok(out)
    }

    async fn sync_lead(&self, lead: &Value) -> Result<Value, SinkError> {
        let body = json!({"action": "createOrUpdate", "lookupField": "email", "asyncProcessing": false,
                          "input": [lead]});
        self.post_json("rest/v1/leads.json", &body).await
    }

    /// POSTs `body` to `path` with a fresh-enough token; Marketo's `success: false` errors
    /// classified for the queue (an expired token is renewed once).
    async fn post_json(&self, path: &str, body: &Value) -> Result<Value, SinkError> {
        let mut stale = false;
        for _ in 0..2 {
            let token = self.token(stale).await?;
            let req = self
                .http
                .post(format!("{}/{path}", self.base))
                .bearer_auth(token.expose())
                .json(body);
            let Reply { status, text, .. } = self.call(req, "Marketo").await?;
            if status != 200 {
                return Err(by_status(
                    status,
                    format!("Marketo answered {status}: {text}"),
                ));
            }
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| SinkError::retry(format!("Marketo answered unreadable JSON: {e}")))?;
            if v.get("success").and_then(Value::as_bool) == Some(true) {
                return Ok(v);
            }
            let err = v
                .get("errors")
                .and_then(|e| e.get(0))
                .cloned()
                .unwrap_or(Value::Null);
            let code = err.get("code").and_then(Value::as_str).unwrap_or("");
            let message = format!(
                "Marketo error {code}: {}",
                err.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("no message")
            );
            match code {
                "601" | "602" if !stale => stale = true,
                "606" => {
                    return Err(SinkError::throttled(WINDOW, message).with_code(code));
                }
                "615" => {
                    return Err(
                        SinkError::throttled(Duration::from_secs(1), message).with_code(code)
                    );
                }
                "607" => {
                    return Err(
                        SinkError::throttled(Duration::from_secs(3600), message).with_code(code)
                    );
                }
                "604" | "608" | "611" | "713" => {
                    return Err(SinkError::retry(message).with_code(code));
                }
                _ => return Err(SinkError::rejected(message).with_code(code)),
            }
        }
        Err(SinkError::rejected(
            "Marketo refused a freshly issued access token",
        ))
    }
}

/// Marketo has no meeting object: a meeting's time and status go on the lead (custom fields,
/// crm-apis.md §8); for a conversation, its latest meeting's.
fn meeting_fields(lead: &mut Map<String, Value>, m: &BookedMeeting) {
    if let Some((start, _)) = crate::sink::meetings::times(m) {
        lead.insert("driftMeetingStart".into(), Value::String(start));
        lead.insert("driftMeetingStatus".into(), Value::String(m.status.clone()));
    }
}

/// The standard lead field of a person who opted out of emails.
const UNSUBSCRIBED: &str = "unsubscribed";

impl Sink for Marketo {
    fn render_signal(&self, s: &LeadSignal) -> Value {
        let mut lead = signal_fields(&self.fields, &self.signal_fields, s);
        if s.opted_out {
            lead.insert(UNSUBSCRIBED.into(), true.into());
        }
        if let Some(c) = &s.meeting {
            meeting_fields(&mut lead, &c.booked);
        }
        Value::Object(lead)
    }

    async fn signal(
        &self,
        s: &LeadSignal,
        doc: &Value,
        _prior: &Prior,
    ) -> Result<Delivered, SinkError> {
        match s.email() {
            Some(email) => self.upsert_lead(&email, doc).await,
            None => Ok(Delivered::default()),
        }
    }

    fn render(&self, b: &ConversationBundle) -> Value {
        let mut lead = self.fields.render(&b.context(self.format));
        if b.opted_out {
            lead.insert(UNSUBSCRIBED.into(), true.into());
        }
        if let Some(m) = b
            .meetings
            .iter()
            .max_by_key(|m| (m.booked_at_ms, m.start_ms))
        {
            meeting_fields(&mut lead, m);
        }
        Value::Object(lead)
    }

    async fn deliver(
        &self,
        b: &ConversationBundle,
        doc: &Value,
        _prior: &Prior,
    ) -> Result<Delivered, SinkError> {
        match b.email() {
            Some(email) => self.upsert_lead(&email, doc).await,
            // Marketo leads are keyed by email: without one there is nothing to sync.
            None => Ok(Delivered::default()),
        }
    }

    /// Deletes the leads our deliveries wrote (`POST /rest/v1/leads/delete.json`, 300 at a
    /// time); a lead already gone (Marketo's `1004`) counts as deleted.
    async fn erase(&self, r: &crate::sink::ErasureRequest) -> Result<u32, SinkError> {
        let mut n = 0;
        for chunk in r.ids("lead").chunks(300) {
            let input: Vec<Value> = chunk
                .iter()
                .map(|id| match id.parse::<i64>() {
                    Ok(i) => json!({"id": i}),
                    Err(_) => json!({"id": id}),
                })
                .collect();
            let v = self
                .post_json("rest/v1/leads/delete.json", &json!({"input": input}))
                .await?;
            for r in v
                .get("result")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let status = r.get("status").and_then(Value::as_str);
                let gone = r
                    .get("reasons")
                    .and_then(|x| x.get(0))
                    .and_then(|x| x.get("code"))
                    .and_then(Value::as_str)
                    == Some("1004");
                if status != Some("deleted") && !gone {
                    return Err(SinkError::rejected(format!(
                        "Marketo did not delete lead: {r}"
                    )));
                }
            }
            n += chunk.len() as u32;
        }
        Ok(n)
    }

    /// Sets the standard lead field `unsubscribed` on the lead with this email (`updateOnly`:
    /// no lead is created; a missing one is skipped by Marketo).
    async fn opt_out(&self, o: &crate::sink::OptOut) -> Result<u32, SinkError> {
        let body = json!({"action": "updateOnly", "lookupField": "email", "asyncProcessing": false,
                          "input": [{"email": o.email, UNSUBSCRIBED: true}]});
        let v = self.post_json("rest/v1/leads.json", &body).await?;
        let status = v
            .get("result")
            .and_then(|r| r.get(0))
            .and_then(|r| r.get("status"))
            .and_then(Value::as_str);
        Ok(u32::from(status == Some("updated")))
    }
}
