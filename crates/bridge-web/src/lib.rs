#![doc = include_str!("../README.md")]

mod admin;
mod charts;
pub mod console;
mod error;
mod gateway;
pub mod oauth;
pub mod report;
pub mod server;
mod state;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use bridge_core::metrics::labels;

pub use error::ApiError;
pub use gateway::MAX_BODY;
pub use state::{AppState, OAuthFlow};

/// The router.
pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/metrics", get(metrics))
        .route("/admin/api/tenants", get(admin::tenants))
        .route("/admin/api/sinks", get(admin::sinks))
        .route("/admin/api/jobs/dead", get(admin::dead_jobs))
        .route("/admin/api/jobs/{id}/retry", post(admin::retry_job))
        .route("/admin/api/replay/conversations/{id}", post(admin::replay))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::require_admin,
        ));
    Router::new()
        .route("/webhooks/drift", post(gateway::receive))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/oauth/install", get(oauth::install))
        .route("/oauth/callback", get(oauth::callback))
        .merge(admin)
        .merge(console::routes(state.clone()))
        .with_state(state)
}

async fn readyz(State(st): State<AppState>) -> impl IntoResponse {
    match st.queue.pending().await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    let mut extra = Vec::new();
    match st.queue.counts().await {
        Ok(counts) => {
            for state in ["queued", "running", "done", "dead", "cancelled"] {
                let n = counts.iter().find(|(s, _)| s == state).map_or(0, |c| c.1);
                extra.push((
                    "driftbridge_jobs",
                    "Jobs by state.",
                    labels(&[("state", state)]),
                    n as f64,
                ));
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not count jobs for /metrics"),
    }
    for (status, n) in st.drift.status_counts() {
        let s = if status == 0 {
            "none".to_owned()
        } else {
            status.to_string()
        };
        extra.push((
            "driftbridge_drift_calls",
            "Drift API responses by status (none = no response).",
            labels(&[("status", &s)]),
            n as f64,
        ));
    }
    for (sink, h) in st.sinks.health() {
        extra.push((
            "driftbridge_sink_up",
            "1 when the sink's CRM answered its last attempt (or its host resolved at start), \
             0 while it cannot be reached; its deliveries retry meanwhile.",
            labels(&[("sink", &sink)]),
            if h.up { 1.0 } else { 0.0 },
        ));
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(&extra),
    )
}
