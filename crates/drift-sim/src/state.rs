//! Shared simulator state, its configuration, and the Drift-shaped error response.

use std::sync::Arc;

use parking_lot::Mutex;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use drift_types::{ApiErrorBody, EpochMillis, OrgId, Secret};
use serde::{Deserialize, Serialize};

use crate::auth::{ALL_SCOPES, AuthStore};
use crate::faults::Faults;
use crate::generate::{DataConfig, generate};
use crate::ratelimit::{RateLimitConfig, RateLimiter};
use crate::rng::Rng;
use crate::webhooks::{Emitter, WebhookConfig};
use crate::world::{World, WorldError};

/// The simulated Drift app (developer portal settings).
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// App id reported by token_info and stamped on posted messages.
    pub app_id: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: Secret,
    /// The configured redirect URL; `None` accepts any.
    pub redirect_uri: Option<String>,
    /// Scopes granted to OAuth installs.
    pub scopes: Vec<String>,
    /// OAuth access-token lifetime (Drift: about 2 hours).
    pub access_token_ttl: Duration,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            app_id: "driftbridge-sim-app".into(),
            client_id: "sim-client-id".into(),
            client_secret: Secret::new("sim-client-secret"),
            redirect_uri: None,
            scopes: ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            access_token_ttl: Duration::from_secs(7200),
        }
    }
}

/// Everything the simulator is started with.
#[derive(Clone, Debug, Default)]
pub struct SimConfig {
    /// The dataset.
    pub data: DataConfig,
    /// Rate limit per access token.
    pub rate_limit: RateLimitConfig,
    /// The app.
    pub app: AppConfig,
    /// Private-app token of the first org; random when `None`.
    pub token: Option<String>,
    /// Webhook delivery.
    pub webhooks: WebhookConfig,
    /// How long after `POST /gdpr/delete` the org's data is erased and the
    /// `gdpr_delete_requested` webhook sent (Drift erases asynchronously; 0 by default).
    pub gdpr_delete_delay: Duration,
}

impl SimConfig {
    /// One org with `conversations` conversations and the rate limit off: the usual setup
    /// of tests and benchmarks that are not about rate limits.
    pub fn unlimited(conversations: u32) -> Self {
        Self {
            data: DataConfig {
                conversations,
                ..DataConfig::default()
            },
            rate_limit: RateLimitConfig {
                per_minute: 0,
                burst: None,
            },
            ..Self::default()
        }
    }
}

/// One logged request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoggedRequest {
    /// Method.
    pub method: String,
    /// Route template, e.g. `/conversations/{id}`.
    pub route: String,
    /// Path and query as sent.
    pub uri: String,
    /// Status answered.
    pub status: u16,
    /// Milliseconds since the simulator started.
    pub at_ms: u64,
}

/// Request counters and a bounded log of recent requests.
#[derive(Debug, Default)]
pub struct RequestLog {
    /// `"GET /conversations/{id}"` -> status -> count.
    pub counts: BTreeMap<String, BTreeMap<u16, u64>>,
    /// The most recent requests, oldest first.
    pub recent: VecDeque<LoggedRequest>,
    /// All requests ever logged.
    pub total: u64,
}

/// How many requests the log keeps: enough for a test's whole walk, bounded for long runs.
pub const RECENT_REQUESTS: usize = 100_000;

impl RequestLog {
    /// Records one request.
    pub fn record(&mut self, entry: LoggedRequest) {
        *self
            .counts
            .entry(format!("{} {}", entry.method, entry.route))
            .or_default()
            .entry(entry.status)
            .or_default() += 1;
        self.total += 1;
        if self.recent.len() == RECENT_REQUESTS {
            self.recent.pop_front();
        }
        self.recent.push_back(entry);
    }

    /// Requests to `method route` with any status.
    pub fn count(&self, method: &str, route: &str) -> u64 {
        self.counts
            .get(&format!("{method} {route}"))
            .map_or(0, |m| m.values().sum())
    }

    /// Requests answered with `status`, over all routes.
    pub fn count_status(&self, status: u16) -> u64 {
        self.counts.values().filter_map(|m| m.get(&status)).sum()
    }
}

/// The simulator's state, shared by every handler.
#[derive(Debug)]
pub struct SimState {
    /// Start-up configuration.
    pub config: SimConfig,
    /// The data.
    pub world: Mutex<World>,
    /// Tokens and codes.
    pub auth: Mutex<AuthStore>,
    /// Rate limiter.
    pub limiter: Mutex<RateLimiter>,
    /// The reporting API's own cap per org (drift-api.md §5.1.4: 60 calls a minute).
    pub report_limiter: Mutex<RateLimiter>,
    /// Fault injection rules.
    pub faults: Mutex<Faults>,
    /// Request log.
    pub log: Mutex<RequestLog>,
    /// Webhook emitter.
    pub webhooks: Emitter,
    /// Randomness for faults, live mode and event bursts.
    pub rng: Mutex<Rng>,
    /// Private-app token per org.
    pub private_tokens: BTreeMap<OrgId, String>,
    /// When the simulator started.
    pub started: Instant,
    /// The CRM simulators.
    pub crm: Arc<crate::crm::CrmState>,
    /// The customer's web page for the widget bridge (`/sim/site`).
    pub site: Mutex<Option<crate::site::setup::SiteSetup>>,
}

impl SimState {
    /// Generates the world and issues one private-app token per org.
    pub fn new(config: SimConfig) -> Self {
        let world = generate(&config.data);
        let mut auth = AuthStore::new(config.data.seed);
        let now = EpochMillis::now().get();
        let mut private_tokens = BTreeMap::new();
        for (i, org) in world.orgs.keys().enumerate() {
            let fixed = if i == 0 { config.token.clone() } else { None };
            let t = auth.add_private_token(*org, fixed, &config.app.client_id, now);
            private_tokens.insert(*org, t);
        }
        Self {
            limiter: Mutex::new(RateLimiter::new(config.rate_limit)),
            report_limiter: Mutex::new(RateLimiter::new(crate::ratelimit::RateLimitConfig {
                per_minute: REPORTS_PER_MINUTE,
                burst: None,
            })),
            webhooks: Emitter::new(config.webhooks.clone()),
            rng: Mutex::new(Rng::derive(config.data.seed, 0xFA17)),
            world: Mutex::new(world),
            auth: Mutex::new(auth),
            faults: Mutex::new(Faults::default()),
            log: Mutex::new(RequestLog::default()),
            private_tokens,
            started: Instant::now(),
            crm: Arc::default(),
            site: Mutex::new(None),
            config,
        }
    }

    /// The first org's private-app token.
    pub fn default_token(&self) -> &str {
        self.private_tokens
            .values()
            .next()
            .map_or("", String::as_str)
    }

    /// The first org.
    pub fn default_org(&self) -> OrgId {
        self.private_tokens
            .keys()
            .next()
            .copied()
            .unwrap_or_default()
    }
}

/// A Drift-shaped error: `{"error": {"type", "message"}}` with the §15 status codes.
#[derive(Debug)]
pub struct SimError {
    /// HTTP status.
    pub status: StatusCode,
    /// Drift error type.
    pub kind: &'static str,
    /// Message.
    pub message: String,
    /// `Retry-After` seconds for 429.
    pub retry_after: Option<u64>,
}

impl SimError {
    /// An error with a status and Drift type.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 `validation_error`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_error", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 401 `authentication_error`.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "authentication_error", message)
    }

    /// 429 `rate_limit_error` with `Retry-After`.
    pub fn rate_limited(retry_after_secs: u64, message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(retry_after_secs),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", message)
        }
    }
}

/// Drift caps its reporting API at 60 calls a minute (drift-api.md §5.1.4).
pub const REPORTS_PER_MINUTE: u32 = 60;

impl From<WorldError> for SimError {
    fn from(e: WorldError) -> Self {
        match e {
            WorldError::NotFound(_) => Self::not_found(e.to_string()),
            WorldError::Conflict(_) => Self::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            WorldError::Invalid(_) => Self::invalid(e.to_string()),
        }
    }
}

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        let body = ApiErrorBody::new(self.kind, self.message);
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        resp
    }
}

/// Handler result.
pub type SimResult<T> = Result<T, SimError>;
