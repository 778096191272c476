//! The operator's console under `/admin`: server-rendered pages (minijinja, HTML
//! auto-escaping), one embedded stylesheet, no script. Signing in exchanges the admin or
//! viewer token for a signed session cookie; every page answers with a strict CSP,
//! `nosniff` and `frame-ancestors 'none'`; every POST needs an admin session and the
//! session's CSRF token, checked here once for all of them before any handler runs.
//!
//! Pages: overview, events, jobs, conversation, tenants, syncs, privacy, audit. What they
//! read comes from `bridge_store::ops` and the queue's listings; the actions write the
//! admin audit in the same transaction as their change where there is one.

mod actions;
mod analytics;
mod mask;
mod overview;
mod pages;
mod records;
mod session;
mod tenants;

use std::sync::OnceLock;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::{Environment, Value, context};

pub use session::{Role, Session, Sessions};

use crate::AppState;

/// Largest form a console POST may send.
const MAX_FORM: usize = 64 * 1024;

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes (mounted on the app's router).
pub(crate) fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/admin", get(overview::show))
        .route("/admin/", get(overview::show))
        .route("/admin/login", get(pages::login_form).post(pages::login))
        .route("/admin/login/once/{code}", get(pages::login_once))
        .route("/admin/logout", post(pages::logout))
        .route("/admin/assets/console.css", get(pages::stylesheet))
        .route("/admin/events", get(records::events))
        .route("/admin/events/{id}", get(records::event))
        .route("/admin/jobs", get(records::jobs))
        .route("/admin/jobs/retry", post(actions::retry_matching))
        .route("/admin/jobs/{id}/retry", post(actions::retry))
        .route("/admin/jobs/{id}/cancel", post(actions::cancel))
        .route("/admin/conversations", get(records::find_conversation))
        .route(
            "/admin/conversations/{org}/{id}",
            get(records::conversation),
        )
        .route(
            "/admin/conversations/{org}/{id}/replay",
            post(actions::replay),
        )
        .route("/admin/tenants", get(tenants::list))
        .route(
            "/admin/tenants/{org}/revoke",
            get(tenants::confirm_revoke).post(tenants::revoke),
        )
        .route("/admin/tenants/{org}/restore", post(tenants::restore))
        .route("/admin/syncs", get(records::syncs))
        .route("/admin/analytics", get(analytics::show))
        .route("/admin/privacy", get(records::privacy))
        .route("/admin/audit", get(records::audit))
        .route_layer(axum::middleware::from_fn_with_state(state, guard))
}

/// Paths served without a session.
fn public(path: &str) -> bool {
    path == "/admin/login"
        || path.starts_with("/admin/login/once/")
        || path.starts_with("/admin/assets/")
}

/// Security headers on every answer; a session for every page but sign-in; an admin session
/// and its CSRF token for every POST.
async fn guard(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let mut resp = check(&st, req, next).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

async fn check(st: &AppState, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if public(&path) {
        return next.run(req).await;
    }
    let now = drift_types::now_ms();
    let Some(session) = st.sessions.from_headers(req.headers(), now) else {
        if req.method() == Method::GET {
            return Redirect::to("/admin/login").into_response();
        }
        tracing::warn!(http.path = %path, "console POST without a session refused");
        return message(
            StatusCode::UNAUTHORIZED,
            "Sign in first",
            "This action needs a console session.",
        );
    };
    let mut req = req;
    if req.method() != Method::GET && req.method() != Method::HEAD {
        // Signing out is the one thing a viewer may post.
        if session.role != Role::Admin && path != "/admin/logout" {
            tracing::warn!(http.path = %path, actor = %session.actor(), "a viewer's POST refused");
            return message(
                StatusCode::FORBIDDEN,
                "Not allowed",
                "A viewer session can read every page but take no action.",
            );
        }
        let (parts, body) = req.into_parts();
        let Ok(bytes) = to_bytes(body, MAX_FORM).await else {
            return message(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Form too large",
                "A console form is at most 64 KiB.",
            );
        };
        let csrf = url::form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        if !st.sessions.csrf_ok(&session, &csrf) {
            tracing::warn!(http.path = %path, actor = %session.actor(), "console POST with a missing or wrong CSRF token refused");
            return message(
                StatusCode::FORBIDDEN,
                "Refused",
                "The form's CSRF token is missing or is not this session's. Reload the page and try again.",
            );
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    req.extensions_mut().insert(session);
    next.run(req).await
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        env.add_filter("when", |ms: Option<i64>| {
            ms.map_or_else(
                || "–".to_owned(),
                |m| {
                    let iso = drift_types::EpochMillis(m).to_iso8601();
                    format!("{} {} UTC", &iso[..10], &iso[11..19])
                },
            )
        });
        for (name, src) in TEMPLATES {
            env.add_template(name, src)
                .unwrap_or_else(|e| panic!("console template {name} does not parse: {e}"));
        }
        env
    })
}

/// A duration in ms as a short age (`45 s`, `12 min`, `3 h`, `2 days`); a negative one (a
/// clock behind the database's) reads `0 s`.
pub(crate) fn ago(ms: i64) -> String {
    drift_types::age(ms.max(0))
}

const TEMPLATES: &[(&str, &str)] = &[
    (
        "layout.html",
        include_str!("../templates/console/layout.html"),
    ),
    (
        "message.html",
        include_str!("../templates/console/message.html"),
    ),
    (
        "login.html",
        include_str!("../templates/console/login.html"),
    ),
    (
        "overview.html",
        include_str!("../templates/console/overview.html"),
    ),
    (
        "events.html",
        include_str!("../templates/console/events.html"),
    ),
    (
        "event.html",
        include_str!("../templates/console/event.html"),
    ),
    ("jobs.html", include_str!("../templates/console/jobs.html")),
    (
        "conversation.html",
        include_str!("../templates/console/conversation.html"),
    ),
    (
        "tenants.html",
        include_str!("../templates/console/tenants.html"),
    ),
    (
        "revoke.html",
        include_str!("../templates/console/revoke.html"),
    ),
    (
        "syncs.html",
        include_str!("../templates/console/syncs.html"),
    ),
    (
        "privacy.html",
        include_str!("../templates/console/privacy.html"),
    ),
    (
        "audit.html",
        include_str!("../templates/console/audit.html"),
    ),
    (
        "analytics.html",
        include_str!("../templates/console/analytics.html"),
    ),
    ("report_charts.html", crate::report::CHARTS_TEMPLATE),
];

/// Renders a template to an HTML answer.
fn render(status: StatusCode, name: &str, ctx: Value) -> Response {
    match env().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "rendering a console page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// A page for a signed-in operator: the layout's session, CSRF token and active tab, and
/// the page's own values.
fn page(st: &AppState, s: &Session, name: &str, active: &str, ctx: Value) -> Response {
    let base = context! {
        actor => s.actor(),
        admin => s.role == Role::Admin,
        viewer => s.role == Role::Viewer,
        csrf => st.sessions.csrf(s),
        active => active,
    };
    render(StatusCode::OK, name, context! { ..ctx, ..base })
}

/// A short page that says what happened (errors, refusals).
fn message(status: StatusCode, title: &str, text: &str) -> Response {
    render(status, "message.html", context! { title, text })
}

/// An internal failure: logged in full, shown without detail.
fn failed(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "a console page failed");
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something failed",
        "The page could not be built; the server log says why.",
    )
}

/// A filter value that did not parse.
fn bad_input(what: &str, e: impl std::fmt::Display) -> Response {
    message(
        StatusCode::BAD_REQUEST,
        "Check the filter",
        &format!("{what}: {e}"),
    )
}

/// A form or filter field that did not parse: which one and why (answered as a 400 page).
#[derive(Debug)]
pub(crate) struct BadInput {
    what: &'static str,
    why: String,
}

impl BadInput {
    fn new(what: &'static str, why: impl std::fmt::Display) -> Self {
        BadInput {
            what,
            why: why.to_string(),
        }
    }
}

impl IntoResponse for BadInput {
    fn into_response(self) -> Response {
        bad_input(self.what, self.why)
    }
}
