#![doc = include_str!("../README.md")]

mod admin;
mod body;
mod charts;
pub mod console;
mod error;
mod gateway;
pub mod oauth;
pub mod report;
mod scrape;
pub mod server;
mod state;
pub mod widget;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};

pub use error::ApiError;
pub use gateway::MAX_BODY;
pub use state::{AppState, OAuthFlow};

/// The router.
pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/metrics", get(scrape::metrics))
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
        .route("/widget.js", get(widget::script::latest))
        .route("/widget/v1.js", get(widget::script::pinned))
        .route(
            "/widget/events",
            post(widget::receive).options(widget::preflight),
        )
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
