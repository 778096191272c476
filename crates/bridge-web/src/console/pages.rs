//! Signing in and out, and the stylesheet.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::{Role, message, render};
use crate::AppState;

/// `GET /admin/assets/console.css`.
pub(super) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../templates/console/console.css"),
    )
        .into_response()
}

/// `GET /admin/login`.
pub(super) async fn login_form(State(st): State<AppState>) -> Response {
    let closed = st.admin_token.is_none() && st.viewer_token.is_none();
    render(
        StatusCode::OK,
        "login.html",
        context! { closed, error => "" },
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct Login {
    token: String,
    #[serde(default)]
    name: String,
}

fn matches(want: Option<&drift_types::Secret>, got: &str) -> bool {
    want.is_some_and(|w| bool::from(w.expose().as_bytes().ct_eq(got.as_bytes())))
}

/// Whether the cookie must be `Secure`: configured so, or the request came through an HTTPS
/// proxy.
fn secure(st: &AppState, headers: &HeaderMap) -> bool {
    st.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

fn signed_in(st: &AppState, headers: &HeaderMap, role: Role, name: &str) -> Response {
    let (session, cookie) =
        st.sessions
            .start(role, name, secure(st, headers), drift_types::now_ms());
    tracing::info!(actor = %session.actor(), "console sign-in");
    let mut resp = Redirect::to("/admin").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// `POST /admin/login`: the admin or viewer token for a session.
pub(super) async fn login(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Login>,
) -> Response {
    let token = f.token.trim();
    let role = if matches(st.admin_token.as_ref(), token) {
        Role::Admin
    } else if matches(st.viewer_token.as_ref(), token) {
        Role::Viewer
    } else {
        tracing::warn!(
            token.presented = !token.is_empty(),
            "console sign-in refused"
        );
        // A pause makes guessing slow without holding anything.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let closed = st.admin_token.is_none() && st.viewer_token.is_none();
        return render(
            StatusCode::UNAUTHORIZED,
            "login.html",
            context! { closed, error => "That is neither the admin token nor the viewer token (admin.token, admin.viewer_token)." },
        );
    };
    signed_in(&st, &headers, role, &f.name)
}

/// `GET /admin/login/once/{code}`: a one-time link (`demo --keep` prints one).
pub(super) async fn login_once(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Response {
    match st.sessions.redeem(&code, drift_types::now_ms()) {
        Some(role) => signed_in(&st, &headers, role, "one-time link"),
        None => message(
            StatusCode::UNAUTHORIZED,
            "This link is spent",
            "A sign-in link works once and for 15 minutes. Sign in with the admin token instead.",
        ),
    }
}

/// `POST /admin/logout`.
pub(super) async fn logout(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let mut resp = Redirect::to("/admin/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&st.sessions.end(secure(&st, &headers))) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}
