//! What the CRM simulators share: targets, faults, settings, records, counters, windows.

// Helpers answer either a value or the finished error `Response` the handler returns.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A CRM handler's answer: both sides are finished responses, so helpers can use `?`.
pub(crate) type Answer = Result<Response, Response>;

/// The targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// HubSpot.
    Hubspot,
    /// Salesforce.
    Salesforce,
    /// Marketo.
    Marketo,
}

/// What a fault makes a target answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultMode {
    /// Its rate-limit error (HubSpot 429, Salesforce 403 REQUEST_LIMIT_EXCEEDED, Marketo 606).
    RateLimit,
    /// Its unavailable error (HubSpot 503, Salesforce 503, Marketo 608).
    Unavailable,
}

/// Tunables.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrmSettings {
    /// Added to every CRM answer.
    pub latency_ms: u64,
    /// HubSpot requests per rolling 10 s (Professional private app: 190).
    pub hubspot_per_10s: u32,
    /// HubSpot search requests per second.
    pub hubspot_search_per_sec: u32,
    /// How long a new HubSpot object stays invisible to search.
    pub hubspot_search_lag_ms: u64,
    /// HubSpot's accepted bearer token.
    pub hubspot_token: String,
    /// Salesforce connected app and integration user.
    pub salesforce_client_id: String,
    /// Its secret.
    pub salesforce_client_secret: String,
    /// The refresh token it accepts.
    pub salesforce_refresh_token: String,
    /// Refresh-token rotation: each refresh answers a new refresh token and spends the old.
    pub salesforce_rotate_refresh: bool,
    /// Salesforce API calls per 24 h.
    pub salesforce_daily_limit: u64,
    /// Marketo API user.
    pub marketo_client_id: String,
    /// Its secret.
    pub marketo_client_secret: String,
    /// Marketo calls per 20 s.
    pub marketo_per_20s: u32,
    /// Marketo concurrent calls.
    pub marketo_concurrency: u32,
    /// Marketo token lifetime in seconds.
    pub marketo_token_secs: u64,
    /// When set, a deletion beyond this many (`delete` and `gdpr_delete` writes so far) waits
    /// until it is raised or cleared: a test stops an erasure after exactly this many CRM
    /// deletions. Deletion requests run one at a time while it is set (a Marketo request
    /// deleting several leads passes as one).
    pub delete_budget: Option<usize>,
}

impl Default for CrmSettings {
    fn default() -> Self {
        CrmSettings {
            latency_ms: 0,
            hubspot_per_10s: 190,
            hubspot_search_per_sec: 5,
            hubspot_search_lag_ms: 0,
            hubspot_token: "pat-na1-driftbridge-sim".into(),
            salesforce_client_id: "sim-salesforce-client".into(),
            salesforce_client_secret: "sim-salesforce-secret".into(),
            salesforce_refresh_token: "sim-salesforce-refresh".into(),
            salesforce_rotate_refresh: false,
            salesforce_daily_limit: 100_000,
            marketo_client_id: "sim-marketo-client".into(),
            marketo_client_secret: "sim-marketo-secret".into(),
            marketo_per_20s: 100,
            marketo_concurrency: 10,
            marketo_token_secs: 3600,
            delete_budget: None,
        }
    }
}

/// One recorded write.
#[derive(Debug, Clone, Serialize)]
pub struct Write {
    /// Which CRM.
    pub target: Target,
    /// Object type (`contacts`, `notes`, `Lead`, `Task`, `leads`).
    pub object: String,
    /// `create`, `update`, `delete` or `gdpr_delete`.
    pub op: &'static str,
    /// The record id.
    pub id: String,
    /// Milliseconds since the epoch.
    pub at_ms: i64,
}

impl Write {
    /// A record removed: a plain `delete` or HubSpot's `gdpr_delete`.
    pub fn is_delete(&self) -> bool {
        self.op == "delete" || self.op == "gdpr_delete"
    }
}

/// Per-target counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Requests received.
    pub requests: u64,
    /// Answered with an injected fault.
    pub faulted: u64,
    /// Answered with a rate-limit error (injected or real).
    pub throttled: u64,
    /// Records created.
    pub created: u64,
    /// Records updated.
    pub updated: u64,
    /// Requests rejected as invalid (4xx other than auth and limits).
    pub rejected: u64,
}

/// One CRM record.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// Id.
    pub id: String,
    /// Fields or properties.
    pub fields: BTreeMap<String, Value>,
    /// Associated record ids (HubSpot note -> contacts).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub associations: Vec<String>,
    /// Creation time (ms).
    pub created_ms: i64,
    /// Times updated.
    pub updates: u64,
}

/// A rolling window counter.
#[derive(Debug, Default)]
pub(crate) struct Window(VecDeque<Instant>);

impl Window {
    /// Takes a slot of `max` per `span`; on refusal, how long until one frees.
    pub(crate) fn take(&mut self, max: u32, span: Duration) -> Result<u32, Duration> {
        let now = Instant::now();
        while self
            .0
            .front()
            .is_some_and(|t| now.duration_since(*t) >= span)
        {
            self.0.pop_front();
        }
        if self.0.len() >= max as usize {
            return Err(span - now.duration_since(self.0[0]));
        }
        self.0.push_back(now);
        Ok(max - self.0.len() as u32)
    }
}
