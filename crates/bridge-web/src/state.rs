//! What the handlers share.

use std::sync::Arc;

use bridge_core::drift::DriftPool;
use bridge_core::ingest::Ingestor;
use bridge_core::metrics::Metrics;
use bridge_core::tenants::Tenants;
use bridge_queue::Queue;
use drift_types::Secret;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Durable intake.
    pub ingestor: Ingestor,
    /// The queue (for readiness and job gauges).
    pub queue: Queue,
    /// Accepted verification tokens (more than one while rotating).
    pub verification_tokens: Arc<Vec<Secret>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Drift clients (for call counters).
    pub drift: Arc<DriftPool>,
    /// Installed tenants and their vault.
    pub tenants: Option<Tenants>,
    /// The Drift app's install flow, when configured.
    pub oauth: Option<OAuthFlow>,
    /// The admin bearer token; without it admin routes are closed.
    pub admin_token: Option<Secret>,
    /// The viewer token: the console read-only, personal data masked.
    pub viewer_token: Option<Secret>,
    /// Console sessions (signed cookies, CSRF tokens, one-time sign-in links).
    pub sessions: Arc<crate::console::Sessions>,
    /// Mark the session cookie `Secure` (set behind HTTPS; a request forwarded as
    /// `X-Forwarded-Proto: https` gets it anyway).
    pub secure_cookies: bool,
    /// Serve /metrics without the admin token.
    pub metrics_public: bool,
    /// Longest wait for a webhook's body once its headers arrived.
    pub body_read_timeout: std::time::Duration,
    /// The CRM/MAP sinks (for their health).
    pub sinks: bridge_sinks::registry::Sinks,
    /// The widget bridge's intake, when sites are configured.
    pub widget: Option<Arc<crate::widget::intake::Intake>>,
}

/// The install flow's settings.
#[derive(Debug, Clone)]
pub struct OAuthFlow {
    /// The Drift app.
    pub app: drift_client::OAuthApp,
    /// Signs the state cookie (derived from the master key).
    pub state_key: [u8; 32],
}
