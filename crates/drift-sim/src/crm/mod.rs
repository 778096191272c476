//! Simulators of the CRM/MAP targets (crm-apis.md §6), served beside the Drift API on their
//! own path prefixes: `/hubspot` (HubSpot's API host), `/salesforce` (login host and
//! instance), `/marketo` (a Munchkin host with `/identity` and `/rest`). Each keeps its
//! records in memory, answers with the vendor's shapes, auth, errors and limits, and logs
//! every write so tests can read them back from `GET /sim/crm`.
//!
//! Controls: `PUT /sim/crm/settings` (latency, limits, search lag), `PUT /sim/crm/faults`
//! (a target answers rate-limit or unavailable errors for a while), `POST
//! /sim/crm/salesforce/expire` (every Salesforce session becomes invalid), `POST
//! /sim/crm/salesforce/seed` (a record created outside driftbridge).

// Helpers answer either a value or the finished error `Response` the handler returns; that
// response is large, and boxing it would only add noise to a simulator.
#![allow(clippy::result_large_err)]

pub mod hubspot;
pub mod marketo;
pub mod salesforce;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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
    /// `create` or `update`.
    pub op: &'static str,
    /// The record id.
    pub id: String,
    /// Milliseconds since the epoch.
    pub at_ms: i64,
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

/// Everything the CRM simulators hold.
#[derive(Debug, Default)]
pub struct CrmState {
    /// Settings.
    pub settings: Mutex<CrmSettings>,
    faults: Mutex<BTreeMap<Target, (FaultMode, Instant)>>,
    stats: Mutex<BTreeMap<Target, Stats>>,
    writes: Mutex<Vec<Write>>,
    /// HubSpot's data.
    pub hubspot: Mutex<hubspot::HubSpotData>,
    /// Salesforce's data.
    pub salesforce: Mutex<salesforce::SalesforceData>,
    /// Marketo's data.
    pub marketo: Mutex<marketo::MarketoData>,
    /// Marketo calls being answered.
    pub(crate) marketo_in_flight: std::sync::atomic::AtomicU32,
    /// Serialises find-then-write upserts.
    pub(crate) upserts: tokio::sync::Mutex<()>,
}

impl CrmState {
    /// Counts a request, waits the latency, and answers the active fault if any.
    pub(crate) async fn enter(&self, t: Target) -> Option<FaultMode> {
        let latency = self.settings.lock().latency_ms;
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        let fault = {
            let mut f = self.faults.lock();
            match f.get(&t) {
                Some((m, until)) if *until > Instant::now() => Some(*m),
                Some(_) => {
                    f.remove(&t);
                    None
                }
                None => None,
            }
        };
        let mut s = self.stats.lock();
        let st = s.entry(t).or_default();
        st.requests += 1;
        if let Some(m) = fault {
            st.faulted += 1;
            if m == FaultMode::RateLimit {
                st.throttled += 1;
            }
        }
        fault
    }

    /// Updates a target's counters.
    pub(crate) fn count(&self, t: Target, f: impl FnOnce(&mut Stats)) {
        f(self.stats.lock().entry(t).or_default());
    }

    /// Records a write.
    pub(crate) fn wrote(&self, target: Target, object: &str, op: &'static str, id: &str) {
        self.count(target, |s| {
            if op == "create" {
                s.created += 1;
            } else {
                s.updated += 1;
            }
        });
        self.writes.lock().push(Write {
            target,
            object: object.to_owned(),
            op,
            id: id.to_owned(),
            at_ms: drift_types::now_ms(),
        });
    }

    /// The counters of a target.
    pub fn stats(&self, t: Target) -> Stats {
        self.stats.lock().get(&t).cloned().unwrap_or_default()
    }

    /// Every write so far.
    pub fn writes(&self) -> Vec<Write> {
        self.writes.lock().clone()
    }

    /// Makes `t` answer `mode` errors for `d`.
    pub fn set_fault(&self, t: Target, mode: FaultMode, d: Duration) {
        self.faults.lock().insert(t, (mode, Instant::now() + d));
    }

    /// Everything, as JSON.
    pub fn dump(&self) -> Value {
        let stats: BTreeMap<Target, Stats> = self.stats.lock().clone();
        json!({
            "hubspot": self.hubspot.lock().dump(),
            "salesforce": self.salesforce.lock().dump(),
            "marketo": self.marketo.lock().dump(),
            "stats": stats,
            "writes": self.writes.lock().len(),
        })
    }
}

type St = State<Arc<crate::SimState>>;

/// A CRM handler's answer: both sides are finished responses, so helpers can use `?`.
pub(crate) type Answer = Result<Response, Response>;

async fn dump(State(st): St) -> Json<Value> {
    Json(st.crm.dump())
}

async fn writes(State(st): St) -> Json<Value> {
    Json(json!(st.crm.writes()))
}

async fn put_settings(State(st): St, Json(s): Json<CrmSettings>) -> Json<Value> {
    *st.crm.settings.lock() = s.clone();
    Json(json!(s))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultBody {
    target: Target,
    mode: FaultMode,
    seconds: f64,
}

async fn put_fault(State(st): St, Json(b): Json<FaultBody>) -> Response {
    if !(b.seconds >= 0.0 && b.seconds <= 86_400.0) {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({"error": "seconds must be in [0, 86400]"})),
        )
            .into_response();
    }
    st.crm
        .set_fault(b.target, b.mode, Duration::from_secs_f64(b.seconds));
    Json(json!({"target": b.target, "mode": b.mode, "seconds": b.seconds})).into_response()
}

/// Routes: the three CRMs and their controls.
pub fn routes() -> Router<Arc<crate::SimState>> {
    Router::new()
        .nest("/hubspot", hubspot::routes())
        .nest("/salesforce", salesforce::routes())
        .nest("/marketo", marketo::routes())
        .route("/sim/crm", get(dump))
        .route("/sim/crm/writes", get(writes))
        .route("/sim/crm/settings", put(put_settings))
        .route("/sim/crm/faults", put(put_fault))
        .route("/sim/crm/salesforce/expire", post(salesforce::expire))
        .route("/sim/crm/salesforce/seed", post(salesforce::seed))
}
