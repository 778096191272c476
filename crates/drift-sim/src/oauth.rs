//! The OAuth side of the simulator (drift-api.md §2): the authorize page with an approve
//! form, the token endpoint (form or JSON, code exchange and refresh with rotation), and
//! `POST /app/token_info`.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use drift_types::{EpochMillis, OrgId, Secret, TokenInfo, TokenRequest, TokenResponse};
use serde::Deserialize;

use crate::api::query_pairs;
use crate::state::{SimError, SimResult, SimState};

const AUTHORIZE_PAGE: &str = include_str!("authorize.html");

fn check_client(st: &SimState, client_id: &str, redirect_uri: &str) -> SimResult<()> {
    let app = &st.config.app;
    if client_id != app.client_id {
        return Err(SimError::invalid(format!(
            "unknown client_id {client_id:?}"
        )));
    }
    if let Some(expected) = &app.redirect_uri {
        if redirect_uri != expected {
            return Err(SimError::invalid(
                "redirect_uri does not match the app's settings",
            ));
        }
    } else if !(redirect_uri.starts_with("http://") || redirect_uri.starts_with("https://")) {
        return Err(SimError::invalid("redirect_uri must be an http(s) URL"));
    }
    Ok(())
}

/// `GET /authorize?response_type=code&client_id=&redirect_uri=&state=`: the approve page.
pub async fn authorize_page(
    State(st): State<Arc<SimState>>,
    RawQuery(q): RawQuery,
) -> SimResult<Html<String>> {
    let pairs = query_pairs(&q);
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map_or("", |(_, v)| v.as_str())
    };
    if get("response_type") != "code" {
        return Err(SimError::invalid("response_type must be code"));
    }
    check_client(&st, get("client_id"), get("redirect_uri"))?;
    let orgs: String = st
        .private_tokens
        .keys()
        .map(|o| format!("<option value=\"{o}\">Org {o}</option>"))
        .collect();
    let page = AUTHORIZE_PAGE
        .replace("{{app}}", &drift_types::html::escape(&st.config.app.app_id))
        .replace(
            "{{client_id}}",
            &drift_types::html::escape(get("client_id")),
        )
        .replace(
            "{{redirect_uri}}",
            &drift_types::html::escape(get("redirect_uri")),
        )
        .replace("{{state}}", &drift_types::html::escape(get("state")))
        .replace(
            "{{scopes}}",
            &drift_types::html::escape(&st.config.app.scopes.join(" ")),
        )
        .replace("{{orgs}}", &orgs);
    Ok(Html(page))
}

/// The approve form.
#[derive(Debug, Deserialize)]
pub struct Decision {
    client_id: String,
    redirect_uri: String,
    #[serde(default)]
    state: String,
    org_id: Option<i64>,
    decision: String,
}

/// `POST /authorize`: redirects back with `code` and `state`, or `error=access_denied`.
pub async fn authorize_decide(State(st): State<Arc<SimState>>, body: Bytes) -> SimResult<Response> {
    let d: Decision = serde_urlencoded_form(&body)?;
    check_client(&st, &d.client_id, &d.redirect_uri)?;
    let mut url = url::Url::parse(&d.redirect_uri)
        .map_err(|e| SimError::invalid(format!("redirect_uri: {e}")))?;
    if d.decision == "approve" {
        let org = d.org_id.map(OrgId).unwrap_or_else(|| st.default_org());
        if !st.private_tokens.contains_key(&org) {
            return Err(SimError::invalid(format!("org {org} does not exist")));
        }
        let code = st
            .auth
            .lock()
            .issue_code(org, &d.redirect_uri, Instant::now());
        url.query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &d.state);
    } else {
        url.query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("state", &d.state);
    }
    Ok(Redirect::to(url.as_str()).into_response())
}

fn serde_urlencoded_form<T: serde::de::DeserializeOwned>(body: &[u8]) -> SimResult<T> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let map: serde_json::Map<String, serde_json::Value> = pairs
        .into_iter()
        .map(|(k, v)| {
            let v = if k == "org_id" {
                v.parse::<i64>().map(Into::into).unwrap_or(v.into())
            } else {
                v.into()
            };
            (k, v)
        })
        .collect();
    serde_json::from_value(map.into()).map_err(|e| SimError::invalid(format!("form: {e}")))
}

/// `POST /oauth2/token`: form (snake_case) or JSON (camelCase or snake_case).
pub async fn token(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> SimResult<Response> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let req: TokenRequest = if is_json {
        serde_json::from_slice(&body)
            .map_err(|e| SimError::invalid(format!("invalid JSON body: {e}")))?
    } else {
        serde_urlencoded_form(&body)?
    };
    let app = &st.config.app;
    if req.client_id != app.client_id || req.client_secret.expose() != app.client_secret.expose() {
        return Err(SimError::unauthenticated(
            "client_id or client_secret is wrong",
        ));
    }
    let now = Instant::now();
    let now_ms = EpochMillis::now().get();
    let ttl = app.access_token_ttl;
    let issued = {
        let mut auth = st.auth.lock();
        match req.grant_type.as_str() {
            "authorization_code" => {
                let code = req
                    .code
                    .as_ref()
                    .ok_or_else(|| SimError::invalid("code is required"))?;
                auth.exchange_code(
                    code.expose(),
                    req.redirect_uri.as_deref(),
                    &app.scopes,
                    ttl,
                    &app.client_id,
                    now,
                    now_ms,
                )
            }
            "refresh_token" => {
                let rt = req
                    .refresh_token
                    .as_ref()
                    .ok_or_else(|| SimError::invalid("refresh_token is required"))?;
                auth.refresh(rt.expose(), ttl, &app.client_id, now, now_ms)
            }
            other => {
                return Err(SimError::invalid(format!(
                    "unsupported grant_type {other:?}"
                )));
            }
        }
    }
    .map_err(|m| SimError::new(StatusCode::BAD_REQUEST, "invalid_grant", m))?;
    Ok(Json(TokenResponse {
        access_token: Secret::new(issued.access_token),
        refresh_token: Some(Secret::new(issued.refresh_token)),
        token_type: Some("bearer".into()),
        expires_in: Some(ttl.as_secs()),
        org_id: Some(issued.org),
        scope: Some(issued.scopes.join(" ")),
    })
    .into_response())
}

#[derive(Debug, Deserialize)]
struct TokenInfoRequest {
    access_token: String,
}

/// `POST /app/token_info`.
pub async fn token_info(
    State(st): State<Arc<SimState>>,
    body: Bytes,
) -> SimResult<Json<TokenInfo>> {
    let req: TokenInfoRequest = crate::api::parse_json(&body)?;
    let auth = st.auth.lock();
    let now = Instant::now();
    let rec = auth.validate(&req.access_token, now).map_err(|_| {
        SimError::unauthenticated("the access token is invalid, expired or revoked")
    })?;
    let expires_in = rec
        .expires_at
        .map_or(0, |e| e.saturating_duration_since(now).as_millis() as i64);
    Ok(Json(TokenInfo {
        access_token: Secret::new(req.access_token.clone()),
        authenticated_userid: format!("orgId:{}", rec.org),
        credential_id: st.config.app.app_id.clone(),
        token_type: "bearer".into(),
        expires_in,
        created_at: rec.created_at_ms,
        scope: rec.scopes.join(" "),
        id: rec.id.clone(),
    }))
}
