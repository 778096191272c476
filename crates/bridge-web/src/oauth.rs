//! The Drift app install flow.
//!
//! `GET /oauth/install` makes a random `state`, binds it to the browser with a signed cookie
//! that expires in 10 minutes, and redirects to Drift's authorize page. `GET /oauth/callback`
//! accepts the code only with that cookie and the same state, exchanges it, asks Drift which
//! org and scopes the token has, and stores the tenant with its tokens sealed in the vault.
//! Every failure shows a page that says what happened, and stores nothing.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use drift_types::OrgId;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;

use crate::state::AppState;

/// How long an install may take from redirect to callback.
pub const STATE_TTL: Duration = Duration::from_secs(600);
const COOKIE: &str = "driftbridge_oauth_state";

fn sign(key: &[u8; 32], state: &str, expires: i64) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&k, format!("{state}.{expires}").as_bytes());
    hex_encode(tag.as_ref())
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The cookie value for `state`, valid until `expires` (epoch ms).
pub fn state_cookie(key: &[u8; 32], state: &str, expires: i64) -> String {
    format!("{state}.{expires}.{}", sign(key, state, expires))
}

/// The state a cookie value vouches for, if its signature holds and it has not expired.
pub fn verify_cookie(key: &[u8; 32], value: &str, now: i64) -> Result<String, &'static str> {
    let mut parts = value.splitn(3, '.');
    let (Some(state), Some(expires), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("the install cookie is malformed");
    };
    let expires: i64 = expires
        .parse()
        .map_err(|_| "the install cookie is malformed")?;
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = (0..tag.len())
        .step_by(2)
        .map(|i| {
            tag.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or("the install cookie is malformed")?;
    hmac::verify(&k, format!("{state}.{expires}").as_bytes(), &tag)
        .map_err(|_| "the install cookie's signature does not match")?;
    if now > expires {
        return Err("the install link expired (it is valid for 10 minutes)");
    }
    Ok(state.to_owned())
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let esc = drift_types::html::escape;
    (
        status,
        Html(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
             <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\">\
             <h1>{t}</h1><p>{b}</p></body></html>",
            t = esc(title),
            b = esc(body)
        )),
    )
        .into_response()
}

fn failed(status: StatusCode, why: &str) -> Response {
    tracing::warn!(reason = why, "install refused");
    page(
        status,
        "driftbridge was not installed",
        &format!("{why}. Nothing was stored. Start again at /oauth/install."),
    )
}

/// `GET /oauth/install`.
pub async fn install(State(st): State<AppState>) -> Response {
    let Some(o) = &st.oauth else {
        return failed(
            StatusCode::NOT_FOUND,
            "this server has no Drift app configured ([oauth] client_id, client_secret, redirect_url)",
        );
    };
    let mut raw = [0u8; 24];
    if SystemRandom::new().fill(&mut raw).is_err() {
        return failed(StatusCode::INTERNAL_SERVER_ERROR, "no randomness available");
    }
    let state = hex_encode(&raw);
    let expires = drift_types::now_ms() + STATE_TTL.as_millis() as i64;
    let cookie = format!(
        "{COOKIE}={}; Max-Age={}; Path=/oauth; HttpOnly; SameSite=Lax",
        state_cookie(&o.state_key, &state, expires),
        STATE_TTL.as_secs()
    );
    let mut resp = Redirect::to(o.app.authorize_url(&state).as_str()).into_response();
    if let Ok(v) = cookie.parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// The callback's query.
#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(name)?.strip_prefix('='))
}

/// `GET /oauth/callback`.
pub async fn callback(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    let (Some(o), Some(tenants)) = (&st.oauth, &st.tenants) else {
        return failed(
            StatusCode::NOT_FOUND,
            "this server has no Drift app configured",
        );
    };
    let Some(cookie) = cookie_value(&headers, COOKIE) else {
        return failed(
            StatusCode::BAD_REQUEST,
            "this browser did not start the install (no install cookie)",
        );
    };
    let expected = match verify_cookie(&o.state_key, cookie, drift_types::now_ms()) {
        Ok(s) => s,
        Err(why) => return failed(StatusCode::BAD_REQUEST, why),
    };
    if q.state.as_deref() != Some(expected.as_str()) {
        return failed(
            StatusCode::BAD_REQUEST,
            "the state Drift sent back does not match this browser's install",
        );
    }
    if let Some(e) = &q.error {
        let why = if e == "access_denied" {
            "the Drift admin declined the requested access".to_owned()
        } else {
            format!("Drift answered the authorization with {e:?}")
        };
        return failed(StatusCode::BAD_REQUEST, &why);
    }
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty()) else {
        return failed(StatusCode::BAD_REQUEST, "Drift sent no authorization code");
    };
    let tokens = match o.app.exchange_code(code).await {
        Ok(t) => t,
        Err(e) => {
            return failed(
                StatusCode::BAD_GATEWAY,
                &format!("exchanging the code with Drift failed: {e}"),
            );
        }
    };
    let info = match st.drift.token_info(&tokens.access_token).await {
        Ok(i) => i,
        Err(e) => {
            return failed(
                StatusCode::BAD_GATEWAY,
                &format!("Drift did not say which org the token is for: {e:#}"),
            );
        }
    };
    let Some(org): Option<OrgId> = tokens.org_id.or(info.org_id()) else {
        return failed(StatusCode::BAD_GATEWAY, "Drift's token names no org");
    };
    let scopes = (!info.scope.is_empty()).then_some(info.scope.as_str());
    let installed = bridge_core::reconnect::install(
        tenants,
        &st.queue,
        org,
        &tokens,
        scopes,
        Some("oauth install"),
    )
    .await;
    let back = match installed {
        Ok(back) => back,
        Err(e) => {
            tracing::error!(
                org.id = org.0,
                error = format!("{e:#}"),
                "storing an install failed"
            );
            return failed(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the install could not be stored",
            );
        }
    };
    st.drift.forget_client(org);
    if back.was_revoked {
        tracing::info!(
            org.id = org.0,
            jobs.requeued = back.jobs_requeued,
            events.replayed = back.events_replayed,
            "tenant re-installed: it is active again"
        );
    } else {
        tracing::info!(org.id = org.0, "tenant installed");
    }
    let mut resp = page(
        StatusCode::OK,
        "driftbridge is installed",
        &format!(
            "Drift org {org} is connected{}. You can close this page.",
            scopes.map_or(String::new(), |s| format!(" with scopes: {s}"))
        ),
    );
    if let Ok(v) = format!("{COOKIE}=; Max-Age=0; Path=/oauth").parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_cookie_verifies_only_unaltered_and_unexpired() {
        let key = [3u8; 32];
        let c = state_cookie(&key, "abc", 1_000);
        assert_eq!(verify_cookie(&key, &c, 999).unwrap(), "abc");
        assert!(
            verify_cookie(&key, &c, 1_001)
                .unwrap_err()
                .contains("expired")
        );
        assert!(verify_cookie(&[4u8; 32], &c, 999).is_err());
        let forged = c.replacen("abc", "abd", 1);
        assert!(
            verify_cookie(&key, &forged, 999)
                .unwrap_err()
                .contains("signature")
        );
        assert!(verify_cookie(&key, "junk", 0).is_err());
    }
}
