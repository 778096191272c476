//! The CRM/MAP sinks: the `Sink` contract, the conversation bundle they are fed, field
//! templates, routing filters, and the registry built from `[sinks.NAME]` configuration.
//!
//! A sink renders a document from the bundle (hashed, so an unchanged conversation is not
//! sent again), then delivers it *idempotently*: every write is an upsert by a key the CRM
//! record carries (the email, an external-id field, a searchable property), so a retry after
//! a crash between the CRM's 2xx and our commit updates instead of creating.

mod bundle;
mod filter;
mod template;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use bundle::{ConversationBundle, TranscriptFormat, truncate};
pub use filter::{Condition, Filter, Op};
pub use template::{FieldMap, JsonTemplate, Template, TemplateError, as_text};

use crate::outbound::OutboundGuard;
use drift_types::Secret;

/// A boxed future of a secret store.
pub type SecretFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// Where sink secrets left out of the configuration come from, and where rotated ones are
/// kept: driftbridge's token vault.
pub trait SecretStore: Send + Sync + std::fmt::Debug {
    /// The secret `field` of sink `sink`.
    fn load<'a>(&'a self, sink: &'a str, field: &'a str) -> SecretFuture<'a, Option<Secret>>;
    /// Stores a new value of it.
    fn save<'a>(&'a self, sink: &'a str, field: &'a str, value: Secret) -> SecretFuture<'a, ()>;
}

/// A sink's handle to keep its own rotated secrets.
#[derive(Debug, Clone)]
pub struct KeepSecret {
    store: Arc<dyn SecretStore>,
    sink: String,
}

impl KeepSecret {
    /// Stores `value` as this sink's `field`.
    pub async fn save(&self, field: &str, value: Secret) -> Result<(), String> {
        self.store.save(&self.sink, field, value).await
    }
}

/// What an earlier delivery of this (org, conversation, sink) recorded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prior {
    /// External ids by role (`contact`, `note`, `lead`, `task`, ...).
    pub external: BTreeMap<String, String>,
    /// When an earlier attempt started writing and never recorded its result: the CRM may
    /// hold records that this store does not know of, so the sink looks before creating.
    pub pending_since: Option<i64>,
}

/// What a delivery wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivered {
    /// External ids by role.
    pub external: BTreeMap<String, String>,
    /// Records created.
    pub created: u32,
    /// Records updated.
    pub updated: u32,
}

/// Why a delivery did not complete, classified for the queue.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The CRM asked us to slow down: wait `after`, without counting a failed attempt.
    #[error("throttled: {message} (waiting {after:?})")]
    Throttled {
        /// How long to wait.
        after: Duration,
        /// The CRM's words.
        message: String,
    },
    /// A transient failure: try again (after `after` when the sink knows how long).
    #[error("{message}")]
    Retry {
        /// A wait the CRM or the sink asks for.
        after: Option<Duration>,
        /// The CRM's words.
        message: String,
    },
    /// The CRM refused the write for good (bad mapping, missing field, bad credentials).
    #[error("{message}")]
    Rejected {
        /// The CRM's words.
        message: String,
    },
}

impl SinkError {
    /// A transient failure without a known wait.
    pub fn retry(message: impl Into<String>) -> Self {
        SinkError::Retry {
            after: None,
            message: message.into(),
        }
    }

    /// A permanent refusal.
    pub fn rejected(message: impl Into<String>) -> Self {
        SinkError::Rejected {
            message: message.into(),
        }
    }
}

/// One destination kind.
pub trait Sink: Send + Sync {
    /// The document this sink writes for the bundle (what is hashed).
    fn render(&self, bundle: &ConversationBundle) -> Value;

    /// Writes `doc` idempotently, given what earlier deliveries recorded.
    fn deliver(
        &self,
        bundle: &ConversationBundle,
        doc: &Value,
        prior: &Prior,
    ) -> impl Future<Output = Result<Delivered, SinkError>> + Send;
}

/// Settings every sink has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct CommonSpec {
    /// Orgs this sink serves (empty = every org).
    pub orgs: Vec<i64>,
    /// Which conversations it receives.
    pub filter: Filter,
    /// Transcript format (each sink has its default).
    pub transcript: Option<TranscriptFormat>,
    /// CRM field -> template; overrides the sink's defaults, `""` removes one.
    pub fields: BTreeMap<String, String>,
}

/// `[sinks.NAME]`: one configured destination.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SinkSpec {
    /// HubSpot CRM.
    Hubspot(crate::hubspot::HubSpotSpec),
    /// Salesforce.
    Salesforce(crate::salesforce::SalesforceSpec),
    /// Marketo Engage.
    Marketo(crate::marketo::MarketoSpec),
    /// Any HTTP endpoint, Standard Webhooks signed.
    Http(crate::http::HttpSpec),
}

impl SinkSpec {
    /// `hubspot`, `salesforce`, `marketo` or `http`.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkSpec::Hubspot(_) => "hubspot",
            SinkSpec::Salesforce(_) => "salesforce",
            SinkSpec::Marketo(_) => "marketo",
            SinkSpec::Http(_) => "http",
        }
    }

    /// The secret settings of this kind, which the vault may hold instead of the config.
    pub fn secret_fields(&self) -> &'static [&'static str] {
        match self {
            SinkSpec::Hubspot(_) => &["token"],
            SinkSpec::Salesforce(_) => &["client_secret", "refresh_token"],
            SinkSpec::Marketo(_) => &["client_secret"],
            SinkSpec::Http(_) => &["secret"],
        }
    }

    /// A secret setting by name.
    pub fn secret_mut(&mut self, field: &str) -> Option<&mut Secret> {
        match (self, field) {
            (SinkSpec::Hubspot(s), "token") => Some(&mut s.token),
            (SinkSpec::Salesforce(s), "client_secret") => Some(&mut s.client_secret),
            (SinkSpec::Salesforce(s), "refresh_token") => Some(&mut s.refresh_token),
            (SinkSpec::Marketo(s), "client_secret") => Some(&mut s.client_secret),
            (SinkSpec::Http(s), "secret") => Some(&mut s.secret),
            _ => None,
        }
    }

    /// The settings all kinds share.
    pub fn common(&self) -> &CommonSpec {
        match self {
            SinkSpec::Hubspot(s) => &s.common,
            SinkSpec::Salesforce(s) => &s.common,
            SinkSpec::Marketo(s) => &s.common,
            SinkSpec::Http(s) => &s.common,
        }
    }

    /// Every problem with this sink's settings (templates, URLs, filters, secrets).
    pub fn problems(&self) -> Vec<String> {
        let mut out = self.common().filter.problems();
        let built = match self {
            SinkSpec::Hubspot(s) => s.templates().map(drop),
            SinkSpec::Salesforce(s) => s.templates().map(drop),
            SinkSpec::Marketo(s) => s.templates().map(drop),
            SinkSpec::Http(s) => s.templates().map(drop),
        };
        if let Err(e) = built {
            out.push(e.to_string());
        }
        out.extend(match self {
            SinkSpec::Hubspot(s) => s.problems(),
            SinkSpec::Salesforce(s) => s.problems(),
            SinkSpec::Marketo(s) => s.problems(),
            SinkSpec::Http(s) => s.problems(),
        });
        out
    }
}

/// A built sink of any kind.
#[derive(Debug)]
pub enum AnySink {
    /// HubSpot.
    Hubspot(crate::hubspot::HubSpot),
    /// Salesforce.
    Salesforce(crate::salesforce::Salesforce),
    /// Marketo.
    Marketo(crate::marketo::Marketo),
    /// HTTP.
    Http(crate::http::HttpSink),
}

impl Sink for AnySink {
    fn render(&self, b: &ConversationBundle) -> Value {
        match self {
            AnySink::Hubspot(s) => s.render(b),
            AnySink::Salesforce(s) => s.render(b),
            AnySink::Marketo(s) => s.render(b),
            AnySink::Http(s) => s.render(b),
        }
    }

    async fn deliver(
        &self,
        b: &ConversationBundle,
        doc: &Value,
        prior: &Prior,
    ) -> Result<Delivered, SinkError> {
        match self {
            AnySink::Hubspot(s) => s.deliver(b, doc, prior).await,
            AnySink::Salesforce(s) => s.deliver(b, doc, prior).await,
            AnySink::Marketo(s) => s.deliver(b, doc, prior).await,
            AnySink::Http(s) => s.deliver(b, doc, prior).await,
        }
    }
}

/// A configured, built sink: its name, routing and a throttle gate shared by its jobs.
#[derive(Debug)]
pub struct NamedSink {
    /// The `[sinks.NAME]` name.
    pub name: String,
    /// Orgs served (empty = all).
    pub orgs: Vec<i64>,
    /// Routing.
    pub filter: Filter,
    /// The sink.
    pub sink: AnySink,
    paused_until: Mutex<Option<Instant>>,
}

impl NamedSink {
    /// Builds `spec` (checking its URLs against `guard`); secrets the spec leaves empty come
    /// from `secrets`.
    pub async fn build(
        name: &str,
        spec: &SinkSpec,
        guard: &OutboundGuard,
        secrets: Option<Arc<dyn SecretStore>>,
    ) -> Result<Self, SinkError> {
        let mut spec = spec.clone();
        for field in spec.secret_fields() {
            let Some(slot) = spec.secret_mut(field) else {
                continue;
            };
            if slot.is_empty()
                && let Some(store) = &secrets
                && let Some(v) = store
                    .load(name, field)
                    .await
                    .map_err(|e| SinkError::rejected(format!("sink {name:?}: {field}: {e}")))?
            {
                *slot = v;
            }
            if slot.is_empty() {
                return Err(SinkError::rejected(format!(
                    "sink {name:?}: {field} is missing: set it in [sinks.{name}] or store it with \
                     `driftbridge sinks set-secret {name} {field}`"
                )));
            }
        }
        let spec = &spec;
        let keep = secrets.map(|store| KeepSecret {
            store,
            sink: name.to_owned(),
        });
        let problems = spec.problems();
        if !problems.is_empty() {
            return Err(SinkError::rejected(format!(
                "sink {name:?}: {}",
                problems.join("; ")
            )));
        }
        let sink = match spec {
            SinkSpec::Hubspot(s) => AnySink::Hubspot(crate::hubspot::HubSpot::new(s, guard).await?),
            SinkSpec::Salesforce(s) => {
                AnySink::Salesforce(crate::salesforce::Salesforce::new(s, guard, keep).await?)
            }
            SinkSpec::Marketo(s) => AnySink::Marketo(crate::marketo::Marketo::new(s, guard).await?),
            SinkSpec::Http(s) => AnySink::Http(crate::http::HttpSink::new(s, guard).await?),
        };
        let common = spec.common();
        Ok(NamedSink {
            name: name.to_owned(),
            orgs: common.orgs.clone(),
            filter: common.filter.clone(),
            sink,
            paused_until: Mutex::new(None),
        })
    }

    /// Whether this sink receives the bundle.
    pub fn routes(&self, b: &ConversationBundle) -> bool {
        (self.orgs.is_empty() || self.orgs.contains(&b.org.0)) && self.filter.matches(b)
    }

    /// The rendered document and its content hash (hex SHA-256 of its JSON).
    pub fn render(&self, b: &ConversationBundle) -> (Value, String) {
        let doc = self.sink.render(b);
        let hash = content_hash(&doc);
        (doc, hash)
    }

    /// Delivers, unless the sink is paused by a throttle; a throttle pauses every job of
    /// this sink in this process for the wait the CRM asked for.
    pub async fn deliver(
        &self,
        b: &ConversationBundle,
        doc: &Value,
        prior: &Prior,
    ) -> Result<Delivered, SinkError> {
        let paused = *self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = paused {
            let now = Instant::now();
            if until > now {
                return Err(SinkError::Throttled {
                    after: until - now,
                    message: format!("sink {} is paused by an earlier throttle", self.name),
                });
            }
        }
        let r = self.sink.deliver(b, doc, prior).await;
        if let Err(SinkError::Throttled { after, .. }) = &r {
            let until = Instant::now() + *after;
            let mut p = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
            if p.is_none_or(|old| old < until) {
                *p = Some(until);
            }
        }
        r
    }
}

/// Hex SHA-256 of a document's JSON.
pub fn content_hash(doc: &Value) -> String {
    let bytes = serde_json::to_vec(doc).unwrap_or_default();
    let d = ring::digest::digest(&ring::digest::SHA256, &bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Every configured sink, by name.
#[derive(Debug, Default, Clone)]
pub struct Sinks(BTreeMap<String, Arc<NamedSink>>);

impl Sinks {
    /// Builds every spec; the first failure names its sink.
    pub async fn build(
        specs: &BTreeMap<String, SinkSpec>,
        guard: &OutboundGuard,
        secrets: Option<Arc<dyn SecretStore>>,
    ) -> Result<Self, SinkError> {
        let mut out = BTreeMap::new();
        for (name, spec) in specs {
            out.insert(
                name.clone(),
                Arc::new(NamedSink::build(name, spec, guard, secrets.clone()).await?),
            );
        }
        Ok(Sinks(out))
    }

    /// The sink named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<NamedSink>> {
        self.0.get(name)
    }

    /// Names of the sinks the bundle routes to.
    pub fn routed(&self, b: &ConversationBundle) -> Vec<String> {
        self.0
            .values()
            .filter(|s| s.routes(b))
            .map(|s| s.name.clone())
            .collect()
    }

    /// Sink names.
    pub fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
}

/// Reads a response body as text, at most `max` characters (for error messages).
pub(crate) async fn body_text(resp: reqwest::Response, max: usize) -> String {
    resp.text()
        .await
        .unwrap_or_default()
        .chars()
        .take(max)
        .collect()
}

/// `Retry-After` in seconds, when present.
pub(crate) fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    h.get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// A CRM's answer: its status, headers, and the first `max_body` characters of its body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

/// Sends `req` to `what`. No answer is a retry (its error without the URL, which may carry
/// secrets), except the outbound guard's refusal, which is final.
pub(crate) async fn exchange(
    req: reqwest::RequestBuilder,
    what: &str,
    max_body: usize,
) -> Result<Reply, SinkError> {
    let resp = req
        .send()
        .await
        .map_err(|e| match crate::outbound::refusal(&e) {
            Some(r) => SinkError::rejected(format!("{what}: {r}")),
            None => SinkError::retry(format!("{what}: {}", e.without_url())),
        })?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = body_text(resp, max_body).await;
    Ok(Reply {
        status,
        headers,
        text,
    })
}

/// A failure judged by its status alone: 429 and 5xx are worth another try, the rest is a
/// refusal.
pub(crate) fn by_status(status: u16, message: String) -> SinkError {
    if status == 429 || status >= 500 {
        SinkError::retry(message)
    } else {
        SinkError::rejected(message)
    }
}

/// Builds a guarded client for a CRM (no redirects: CRM APIs do not redirect writes).
pub(crate) fn client(guard: &OutboundGuard) -> Result<reqwest::Client, SinkError> {
    guard
        .client(
            reqwest::Client::builder().timeout(Duration::from_secs(30)),
            false,
        )
        .map_err(|e| SinkError::rejected(format!("HTTP client: {e}")))
}

/// Checks a configured base URL against the guard.
pub(crate) async fn checked(guard: &OutboundGuard, url: &str) -> Result<String, SinkError> {
    guard
        .check(url)
        .await
        .map_err(|e| SinkError::rejected(e.to_string()))?;
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn specs_parse_by_kind_and_unknown_keys_are_refused() {
        let s: SinkSpec = serde_json::from_value(json!({
            "kind": "hubspot", "token": "t", "orgs": [1],
            "filter": {"status": ["closed"]}, "fields": {"website": "{{contact.attributes.site}}"}
        }))
        .unwrap();
        assert_eq!(s.common().orgs, vec![1]);
        assert_eq!(s.common().filter.status, vec!["closed".to_owned()]);
        assert!(s.common().filter.accepts_event("conversation_push"));
        let e =
            serde_json::from_value::<SinkSpec>(json!({"kind": "hubspot", "token": "t", "tokn": 1}))
                .unwrap_err()
                .to_string();
        assert!(e.contains("tokn"), "{e}");
        let e = serde_json::from_value::<SinkSpec>(json!({"kind": "zoho"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("zoho"), "{e}");
        let bad: SinkSpec = serde_json::from_value(json!({
            "kind": "salesforce", "client_id": "c", "client_secret": "s", "refresh_token": "r",
            "fields": {"Company": "{{contact.company"}
        }))
        .unwrap();
        let p = bad.problems();
        assert!(p.iter().any(|p| p.contains("never closed")), "{p:?}");
    }
}
