#![doc = include_str!("../README.md")]

pub mod api;
pub mod auth;
pub mod control;
pub mod crm;
pub mod faults;
pub mod generate;
mod middleware;
pub mod oauth;
pub mod ratelimit;
pub mod report;
pub mod rng;
pub mod site;
pub mod state;
pub mod text;
mod tls;
pub mod webhooks;
pub mod world;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, patch, post, put};

pub use faults::FaultRule;
pub use generate::DataConfig;
pub use ratelimit::RateLimitConfig;
pub use state::{AppConfig, SimConfig, SimState};
pub use tls::install_crypto;
pub use webhooks::WebhookConfig;

/// The REST API routes (also served under `/v1`).
fn rest_routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/conversations/list", get(api::list_conversations))
        .route("/conversations", get(api::list_conversations))
        .route("/conversations/new", post(api::new_conversation))
        .route("/conversations/stats", get(api::stats))
        .route("/conversations/{id}", get(api::get_conversation))
        .route(
            "/conversations/{id}/messages",
            get(api::list_messages).post(api::post_message),
        )
        .route("/conversations/{id}/transcript", get(api::transcript))
        .route(
            "/conversations/{id}/json_transcript",
            get(api::json_transcript),
        )
        .route("/attachments/{id}/data", get(api::attachment_data))
        .route("/reports/conversations", post(api::report))
        .route(
            "/reports/conversation-summary",
            post(api::conversation_summary),
        )
        .route(
            "/contacts",
            get(api::query_contacts).post(api::create_contact),
        )
        .route("/contacts/timeline", post(api::timeline))
        .route("/contacts/attributes", get(api::attributes))
        .route(
            "/contacts/{id}",
            get(api::get_contact)
                .patch(api::update_contact)
                .delete(api::delete_contact),
        )
        .route(
            "/contacts/{id}/tags",
            get(api::get_tags).post(api::add_tags),
        )
        .route("/contacts/{id}/tags/{name}", delete(api::delete_tag))
        .route(
            "/contacts/{id}/tags/delete/_bulk",
            post(api::delete_tags_bulk),
        )
        .route("/users/list", get(api::list_users))
        .route("/users", get(api::users_batch))
        .route("/users/update", patch(api::update_user))
        .route("/users/meetings/org", get(api::meetings))
        .route("/users/{id}", get(api::get_user))
        .route("/teams/org", get(api::teams))
        .route("/emails/unsubscribe", post(api::unsubscribe_emails))
        .route("/accounts", get(api::list_accounts))
        .route("/accounts/create", post(api::create_account))
        .route("/accounts/update", patch(api::update_account))
        .route(
            "/accounts/{id}",
            get(api::get_account).delete(api::delete_account),
        )
        .route("/playbooks/list", get(api::playbooks))
        .route("/playbooks/clp", get(api::landing_pages))
        .route("/gdpr/retrieve", post(api::gdpr_retrieve))
        .route("/gdpr/delete", post(api::gdpr_delete))
        .route("/app/uninstall", post(api::uninstall))
}

/// The whole simulator app.
pub fn router(state: Arc<SimState>) -> Router {
    use axum::middleware::from_fn_with_state as mw;
    let rest = rest_routes().route_layer(mw(state.clone(), middleware::authenticate));
    let public = Router::new()
        .merge(rest.clone())
        .nest("/v1", rest)
        .route("/oauth2/token", post(oauth::token))
        .route(
            "/authorize",
            get(oauth::authorize_page).post(oauth::authorize_decide),
        )
        .route("/app/token_info", post(oauth::token_info))
        .route_layer(mw(state.clone(), middleware::inject_faults))
        .route_layer(mw(state.clone(), middleware::log_requests));
    let control = Router::new()
        .route("/sim/info", get(control::info))
        .route(
            "/sim/requests",
            get(control::requests).delete(control::clear_requests),
        )
        .route("/sim/faults", put(control::set_faults))
        .route("/sim/rate-limit", put(control::set_rate_limit))
        .route("/sim/webhooks", put(control::set_webhook_target))
        .route("/sim/webhooks/stats", get(control::webhook_stats))
        .route("/sim/webhooks/emit", post(control::emit))
        .route("/sim/mutate", post(control::mutate))
        .route("/sim/live", post(control::live))
        .route("/sim/tokens/expire", post(control::expire_token))
        .route("/sim/site", get(site::page).put(site::configure))
        .route("/sim/site/visit", post(site::visit))
        .route("/sim/site/visit/{id}/close", post(site::close));
    public
        .merge(control)
        .merge(crm::routes().with_state(state.crm.clone()))
        .fallback(api::fallback)
        .with_state(state)
}

/// Serves the simulator on `listener` until `shutdown` resolves.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: Arc<SimState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A simulator running in the background of this process.
#[derive(Debug)]
pub struct SimHandle {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state, for assertions against the ground truth.
    pub state: Arc<SimState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The first org's private-app token.
    pub fn token(&self) -> String {
        self.state.default_token().to_owned()
    }

    /// Stops serving and waits for open requests to finish.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Generates the data and serves it on `addr` (port 0 picks a free port).
pub async fn spawn(config: SimConfig, addr: SocketAddr) -> std::io::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(SimState::new(config));
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run(listener, state.clone(), async {
        let _ = rx.await;
    }));
    Ok(SimHandle {
        addr,
        state,
        stop: Some(stop),
        task,
    })
}
