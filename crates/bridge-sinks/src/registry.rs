//! The registry: `[sinks.NAME]` specs of every kind, the sinks built from them, and the
//! throttle gate each sink's jobs share. The only file that names every concrete sink.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use drift_types::Secret;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::any_sink::AnySink;
use crate::outbound::OutboundGuard;
use crate::sink::{
    CommonSpec, ConversationBundle, Delivered, Filter, KeepSecret, LeadSignal, Prior, SecretStore,
    Sink, SinkError, Template, content_hash, context_shape, signal_shape,
};

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

    /// The URL this sink first calls (its API base, Salesforce's login URL).
    pub fn url(&self) -> &str {
        match self {
            SinkSpec::Hubspot(s) => &s.base_url,
            SinkSpec::Salesforce(s) => &s.login_url,
            SinkSpec::Marketo(s) => &s.base_url,
            SinkSpec::Http(s) => &s.url,
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
        out.extend(self.unknown_paths());
        out
    }

    /// The templates this spec configures, with the setting each comes from.
    fn configured_templates(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .common()
            .fields
            .iter()
            .map(|(k, v)| (format!("fields.{k}"), v.clone()))
            .collect();
        match self {
            SinkSpec::Hubspot(s) => out.extend(
                s.note_template
                    .iter()
                    .map(|t| ("note_template".to_owned(), t.clone())),
            ),
            SinkSpec::Salesforce(s) => out.extend(
                s.task_fields
                    .iter()
                    .map(|(k, v)| (format!("task_fields.{k}"), v.clone())),
            ),
            SinkSpec::Marketo(_) => {}
            SinkSpec::Http(s) => {
                fn strings(v: &Value, out: &mut Vec<(String, String)>) {
                    match v {
                        Value::String(t) => out.push(("template".to_owned(), t.clone())),
                        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
                        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
                        _ => {}
                    }
                }
                if let Some(doc) = &s.template {
                    strings(doc, &mut out);
                }
            }
        }
        out
    }

    /// Placeholders that name nothing in the conversation context: a typo would otherwise
    /// write an empty CRM field on every delivery, so it stops the start instead.
    fn unknown_paths(&self) -> Vec<String> {
        let shape = context_shape();
        let mut out = Vec::new();
        if let Err(e) = self.common().signal_map() {
            out.push(format!("signal_fields: {e}"));
        }
        let signal = signal_shape();
        for (k, text) in &self.common().signal_fields {
            let Ok(t) = Template::parse(text) else {
                continue;
            };
            for path in t.unknown_paths(&signal) {
                out.push(format!(
                    "signal_fields.{k}: {{{{{path}}}}} is not in the signal context (it has \
                     org_id, event, type, key, contact.*, signal.*)"
                ));
            }
        }
        for (setting, text) in self.configured_templates() {
            let Ok(t) = Template::parse(&text) else {
                continue; // reported by templates() above
            };
            for path in t.unknown_paths(&shape) {
                out.push(format!(
                    "{setting}: {{{{{path}}}}} is not in the conversation context (it has \
                     org_id, event, key, conversation.*, contact.* with contact.attributes.*, \
                     agent.*, participants, playbook.*, messages, transcript, transcript_text)"
                ));
            }
        }
        out
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
    health: Mutex<Health>,
}

/// Whether a sink's CRM could be reached, as its last attempt (or the start-up name check)
/// found. A refusal or a throttle is an answer, so the sink is up; a failure to connect, a
/// timeout or a 5xx (every [`SinkError::Retry`]) puts it down until a delivery succeeds.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// Reachable as far as this process knows.
    pub up: bool,
    /// Why not, when down.
    pub error: Option<String>,
    /// When the state last changed (epoch ms).
    pub since_ms: i64,
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
                && let Some(v) = store.load(name, field).await.map_err(|e| {
                    SinkError::rejected(format!(
                        "sink {name:?}: {field} could not be read from the vault"
                    ))
                    .with_source(e)
                })?
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
        let keep = secrets.map(|store| KeepSecret::new(store, name));
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
        // A name that does not resolve now does not stop the start (intake must run while a
        // CRM's DNS is down): the sink starts down, and its deliveries retry until it resolves.
        let health = match guard.check(spec.url()).await {
            Err(e @ crate::outbound::OutboundError::Resolve { .. }) => Health {
                up: false,
                error: Some(e.to_string()),
                since_ms: drift_types::now_ms(),
            },
            _ => Health {
                up: true,
                error: None,
                since_ms: drift_types::now_ms(),
            },
        };
        let common = spec.common();
        Ok(NamedSink {
            name: name.to_owned(),
            orgs: common.orgs.clone(),
            filter: common.filter.clone(),
            sink,
            paused_until: Mutex::new(None),
            health: Mutex::new(health),
        })
    }

    /// Whether the sink's CRM could be reached at the last attempt.
    pub fn health(&self) -> Health {
        self.health.lock().clone()
    }

    fn observe<T>(&self, r: &Result<T, SinkError>) {
        let error = match r {
            Err(e @ SinkError::Retry { .. }) => Some(error_chain(e)),
            _ => None,
        };
        let mut h = self.health.lock();
        let up = error.is_none();
        if up != h.up {
            if up {
                tracing::info!(sink = %self.name, "sink is reachable again");
            } else {
                tracing::warn!(sink = %self.name, error = error.as_deref().unwrap_or_default(),
                    "sink is unreachable; its deliveries retry");
            }
            h.since_ms = drift_types::now_ms();
        }
        h.up = up;
        h.error = error;
    }

    /// Whether this sink receives the bundle.
    pub fn routes(&self, b: &ConversationBundle) -> bool {
        self.serves(b.org.0) && self.filter.matches(b)
    }

    /// The rendered document and its content hash (hex SHA-256 of its JSON).
    pub fn render(&self, b: &ConversationBundle) -> (Value, String) {
        let doc = self.sink.render(b);
        let hash = content_hash(&doc);
        (doc, hash)
    }

    /// Whether every erasure in its orgs is announced to this sink, whether or not it
    /// received the person (an HTTP endpoint may hold anything); a CRM sink is told only of
    /// records its deliveries created.
    pub fn told_of_every_erasure(&self) -> bool {
        matches!(self.sink, AnySink::Http(_))
    }

    /// Whether this sink serves `org`.
    pub fn serves(&self, org: i64) -> bool {
        self.orgs.is_empty() || self.orgs.contains(&org)
    }

    /// Delivers, unless the sink is paused by a throttle; a throttle pauses every job of
    /// this sink in this process for the wait the CRM asked for.
    pub async fn deliver(
        &self,
        b: &ConversationBundle,
        doc: &Value,
        prior: &Prior,
    ) -> Result<Delivered, SinkError> {
        self.unpaused()?;
        let r = self.sink.deliver(b, doc, prior).await;
        self.after(r)
    }

    /// Erases what this sink holds of a person ([`Sink::erase`]), under the same throttle.
    pub async fn erase(&self, r: &crate::sink::ErasureRequest) -> Result<u32, SinkError> {
        self.unpaused()?;
        let r = self.sink.erase(r).await;
        self.after(r)
    }

    /// Whether this sink receives the lead signal.
    pub fn routes_signal(&self, s: &LeadSignal) -> bool {
        self.serves(s.org.0) && self.filter.matches_signal(s)
    }

    /// A lead signal's document and its content hash.
    pub fn render_signal(&self, s: &LeadSignal) -> (Value, String) {
        let doc = self.sink.render_signal(s);
        let hash = content_hash(&doc);
        (doc, hash)
    }

    /// Writes a lead signal ([`Sink::signal`]), under the same throttle.
    pub async fn signal(
        &self,
        s: &LeadSignal,
        doc: &Value,
        prior: &Prior,
    ) -> Result<Delivered, SinkError> {
        self.unpaused()?;
        let r = self.sink.signal(s, doc, prior).await;
        self.after(r)
    }

    /// Sets an email opt-out in this sink ([`Sink::opt_out`]), under the same throttle.
    pub async fn opt_out(&self, o: &crate::sink::OptOut) -> Result<u32, SinkError> {
        self.unpaused()?;
        let r = self.sink.opt_out(o).await;
        self.after(r)
    }

    fn unpaused(&self) -> Result<(), SinkError> {
        let paused = *self.paused_until.lock();
        if let Some(until) = paused {
            let now = Instant::now();
            if until > now {
                return Err(SinkError::throttled(
                    until - now,
                    format!("sink {} is paused by an earlier throttle", self.name),
                ));
            }
        }
        Ok(())
    }

    /// Records the health an answer shows and pauses the sink on a throttle.
    fn after<T>(&self, r: Result<T, SinkError>) -> Result<T, SinkError> {
        self.observe(&r);
        if let Err(SinkError::Throttled { after, .. }) = &r {
            let until = Instant::now() + *after;
            let mut p = self.paused_until.lock();
            if p.is_none_or(|old| old < until) {
                *p = Some(until);
            }
        }
        r
    }
}

/// An error and its causes, joined by ": ".
fn error_chain(e: &SinkError) -> String {
    let mut out = e.to_string();
    let mut next = std::error::Error::source(e);
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
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

    /// Names of the sinks the lead signal routes to.
    pub fn routed_signal(&self, s: &LeadSignal) -> Vec<String> {
        self.0
            .values()
            .filter(|n| n.routes_signal(s))
            .map(|n| n.name.clone())
            .collect()
    }

    /// Sink names.
    pub fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    /// Each sink's health, by name.
    pub fn health(&self) -> Vec<(String, Health)> {
        self.0
            .iter()
            .map(|(n, s)| (n.clone(), s.health()))
            .collect()
    }
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

    #[test]
    fn a_placeholder_naming_nothing_in_the_context_stops_the_start_and_defaults_pass() {
        for spec in [
            json!({"kind": "hubspot", "token": "t"}),
            json!({"kind": "salesforce", "client_id": "c", "client_secret": "s", "refresh_token": "r"}),
            json!({"kind": "marketo", "base_url": "https://x.mktorest.com", "client_id": "c", "client_secret": "s"}),
            json!({"kind": "http", "url": "https://hooks.example.com/x", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
        ] {
            let s: SinkSpec = serde_json::from_value(spec.clone()).unwrap();
            assert_eq!(s.problems(), Vec::<String>::new(), "defaults of {spec}");
        }
        let typo: SinkSpec = serde_json::from_value(json!({
            "kind": "hubspot", "token": "t",
            "fields": {"company": "{{contatc.company | \"n/a\"}}", "site": "{{contact.attributes.site}}"},
            "note_template": "<p>{{conversation.statu}}</p>"
        }))
        .unwrap();
        let p = typo.problems();
        assert!(
            p.iter()
                .any(|x| x.contains("fields.company") && x.contains("{{contatc}}")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|x| x.contains("note_template") && x.contains("{{conversation.statu}}")),
            "{p:?}"
        );
        assert_eq!(p.len(), 2, "contact.attributes.* is open: {p:?}");
        let http: SinkSpec = serde_json::from_value(json!({
            "kind": "http", "url": "https://hooks.example.com/x",
            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "template": {"who": ["{{contact.emial}}"], "n": 1}
        }))
        .unwrap();
        let p = http.problems();
        assert!(
            p.iter()
                .any(|x| x.starts_with("template: {{contact.emial}}")),
            "{p:?}"
        );
    }
}
