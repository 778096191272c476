//! The widget bridge's intake (docs/WIDGET.md): `POST /widget/events` from `/widget.js` on
//! a customer's pages, CORS preflights for their origins, and the script itself.
//!
//! A batch is checked in this order, each failure answered before anything is stored: size
//! (413), JSON (400), site and origin (403), a signed site's token (401), the client's and the
//! site's rate (429), then every event (400 naming the event and field). The events, a
//! consent, and a `derive_attribution` job per conversation they name are committed in one
//! transaction before the answer, with the batches of other requests that arrived meanwhile
//! (`bridge_core::widget_intake`).

pub(crate) mod intake;
mod limits;
pub mod script;

pub use intake::Intake;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bridge_core::metrics::labels;
use bridge_core::widget::{SiteConfig, SiteMode, WidgetConfig, valid_id};
use bridge_core::widget_intake::{Stored, WidgetBatch};
use bridge_store::widget::NewWidgetEvent;
use drift_types::OrgId;
use serde_json::{Value, json};

use crate::{ApiError, AppState};

/// Longest accepted `data` of one event, as JSON.
const MAX_DATA: usize = 8 * 1024;
/// Longest URL or referrer kept.
const MAX_URL: usize = 2048;
/// Longest UTM value kept.
const MAX_UTM: usize = 256;

fn refuse(
    st: &AppState,
    reason: &'static str,
    status: StatusCode,
    code: &'static str,
    msg: impl Into<String>,
) -> ApiError {
    st.metrics.inc(
        "driftbridge_widget_rejected_total",
        "Widget event batches refused, by reason.",
        labels(&[("reason", reason)]),
        1,
    );
    ApiError::new(status, code, msg)
}

fn with_cors(mut r: Response, origin: Option<&str>) -> Response {
    if let Some(o) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        r.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Origin"));
    r
}

/// `OPTIONS /widget/events`: a preflight is answered for configured origins only.
pub(crate) async fn preflight(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let allowed = match (&st.widget, origin) {
        (Some(w), Some(o)) => w.origin_allowed_anywhere(o),
        _ => false,
    };
    if !allowed {
        return with_cors(StatusCode::FORBIDDEN.into_response(), None);
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    with_cors(r, origin)
}

/// `POST /widget/events`.
pub(crate) async fn receive(State(st): State<AppState>, req: Request<Body>) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let cors = st
        .widget
        .as_ref()
        .zip(origin.as_deref())
        .filter(|(w, o)| w.origin_allowed_anywhere(o))
        .map(|(_, o)| o.to_owned());
    let r = match intake(&st, req, origin.as_deref()).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    };
    with_cors(r, cors.as_deref())
}

async fn intake(
    st: &AppState,
    req: Request<Body>,
    origin: Option<&str>,
) -> Result<Value, ApiError> {
    let Some(w) = st.widget.clone() else {
        return Err(refuse(
            st,
            "no_sites",
            StatusCode::FORBIDDEN,
            "no_sites",
            "no widget site is configured",
        ));
    };
    let cfg = &w.config;
    let (parts, body) = req.into_parts();
    let media = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    // text/plain is what a beacon sends (it needs no preflight); the body is JSON either way.
    if media != "application/json" && media != "text/plain" {
        return Err(refuse(
            st,
            "content_type",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON (Content-Type: application/json or text/plain)",
        ));
    }
    let bytes = crate::body::read(
        &parts.headers,
        body,
        cfg.max_batch_bytes,
        st.body_read_timeout,
    )
    .await
    .map_err(|e| match e {
        crate::body::BodyError::TooLarge => refuse(
            st,
            "too_large",
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the batch is larger than {} bytes", cfg.max_batch_bytes),
        ),
        crate::body::BodyError::Timeout => refuse(
            st,
            "body_timeout",
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "the body did not arrive in time",
        ),
    })?;
    let batch: drift_types::widget::Batch = serde_json::from_slice(&bytes).map_err(|e| {
        refuse(
            st,
            "invalid_json",
            StatusCode::BAD_REQUEST,
            "invalid_batch",
            format!("the batch does not parse: {e}"),
        )
    })?;
    let Some(site) = cfg.site(&batch.site) else {
        return Err(refuse(
            st,
            "unknown_site",
            StatusCode::FORBIDDEN,
            "unknown_site",
            format!(
                "no widget site {:?} is configured",
                batch.site.chars().take(64).collect::<String>()
            ),
        ));
    };
    match (origin, site.mode) {
        (Some(o), _) if site.origins.iter().any(|a| a == o) => {}
        // A signed site's backend may post without a browser's Origin; its token decides.
        (None, SiteMode::Signed) => {}
        (o, _) => {
            return Err(refuse(
                st,
                "origin",
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                format!(
                    "origin {:?} is not allowed for site {:?}",
                    o.unwrap_or("(none)"),
                    site.key
                ),
            ));
        }
    }
    let now = drift_types::now_ms();
    let visitor = match site.mode {
        SiteMode::Public => batch.visitor.clone(),
        SiteMode::Signed => {
            let unauthorized =
                |m: String| refuse(st, "token", StatusCode::UNAUTHORIZED, "invalid_token", m);
            let token = batch.token.as_deref().ok_or_else(|| {
                unauthorized(bridge_core::widget::TokenError::Missing.to_string())
            })?;
            let secret = w.secret(&site.key).await.map_err(|e| {
                tracing::error!(error = %format!("{e:#}"), site = %site.key, "reading a widget site's secret failed");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "try again later")
            })?;
            let secret = secret.ok_or_else(|| {
                unauthorized(bridge_core::widget::TokenError::NoSecret.to_string())
            })?;
            bridge_core::widget::verify(&secret, &site.key, token, now / 1000, cfg.max_token_secs)
                .map_err(|e| unauthorized(e.to_string()))?
        }
    };
    if batch.events.len() > cfg.max_events {
        return Err(refuse(
            st,
            "too_many_events",
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_events",
            format!(
                "a batch holds at most {} events; this one holds {}",
                cfg.max_events,
                batch.events.len()
            ),
        ));
    }
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let ip = limits::client_ip(peer, &parts.headers, &cfg.trusted_proxies);
    if w.checks.fetch_add(1, Ordering::Relaxed) % 10_000 == 9_999 {
        w.limits.forget_idle();
    }
    if let Err(r) = w.limits.check(ip, &site.key, batch.events.len()) {
        let mut e = refuse(
            st,
            if r.per == "ip" {
                "rate_ip"
            } else {
                "rate_site"
            },
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many widget events from this {}; retry in {} s",
                if r.per == "ip" { "address" } else { "site" },
                r.retry_after.as_secs()
            ),
        );
        e = e.retry_after(r.retry_after);
        return Err(e);
    }
    let events = validate(&batch, site, &visitor, now, cfg).map_err(|m| {
        refuse(
            st,
            "invalid_event",
            StatusCode::BAD_REQUEST,
            "invalid_event",
            m,
        )
    })?;
    store(st, &w, site, &visitor, events).await
}

async fn store(
    st: &AppState,
    w: &Intake,
    site: &SiteConfig,
    visitor: &str,
    events: Vec<NewWidgetEvent>,
) -> Result<Value, ApiError> {
    let batch = WidgetBatch {
        org: OrgId(site.org_id),
        site: site.key.clone(),
        visitor: visitor.to_owned(),
        events,
    };
    let Stored { fresh, duplicates } = w.store.store(batch).await.map_err(|e| {
        tracing::error!(error = %format!("{:#}", anyhow::Error::from(e)),
            "widget events not stored; answering 503 so the browser retries");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the events could not be stored; retry later",
        )
    })?;
    st.metrics.inc(
        "driftbridge_widget_events_total",
        "Widget events accepted, new or duplicate.",
        labels(&[("site", &site.key)]),
        (fresh + duplicates) as u64,
    );
    Ok(json!({"accepted": fresh, "duplicates": duplicates}))
}

fn cut(s: &Option<String>, max: usize) -> Option<String> {
    s.as_ref()
        .map(|v| v.chars().take(max).collect::<String>())
        .filter(|v| !v.is_empty())
}

/// A URL with every query value that holds an email replaced by `[removed]` (a campaign
/// link's `?email=`); text that is not a URL is dropped when it holds one.
fn scrub_url(s: Option<String>) -> Option<String> {
    let s = s?;
    let Ok(mut u) = url::Url::parse(&s) else {
        return (!holds_email(&s)).then_some(s);
    };
    if !u.query_pairs().any(|(_, v)| holds_email(&v)) {
        return Some(s);
    }
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if holds_email(&v) {
                "[removed]".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    Some(u.to_string())
}

/// Checks every event of the batch and makes its row; the first problem is named.
fn validate(
    batch: &drift_types::widget::Batch,
    site: &SiteConfig,
    visitor: &str,
    now: i64,
    cfg: &WidgetConfig,
) -> Result<Vec<NewWidgetEvent>, String> {
    if !valid_id(visitor) {
        return Err("visitor must be 1 to 64 letters, digits, '-' or '_'".into());
    }
    if !valid_id(&batch.session) {
        return Err("session must be 1 to 64 letters, digits, '-' or '_'".into());
    }
    let oldest = now - cfg.max_age_secs as i64 * 1000;
    let newest = now + cfg.max_future_secs as i64 * 1000;
    batch
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let at = format!("events[{i}]");
            if !valid_id(&e.id) {
                return Err(format!(
                    "{at}.id must be 1 to 64 letters, digits, '-' or '_'"
                ));
            }
            if !drift_types::widget::is_known(&e.event_type) {
                return Err(format!(
                    "{at}.type {:?} is not a widget event this bridge takes",
                    e.event_type.chars().take(64).collect::<String>()
                ));
            }
            if e.ts < oldest || e.ts > newest {
                return Err(format!(
                    "{at}.ts {} is outside the accepted clock window ({} s old to {} s ahead)",
                    e.ts, cfg.max_age_secs, cfg.max_future_secs
                ));
            }
            if e.conversation_id.is_some_and(|c| c <= 0) {
                return Err(format!("{at}.conversationId must be a positive id"));
            }
            let data = if site.collect_contact {
                e.data.clone()
            } else {
                scrub(&e.data)
            };
            let data = data.to_string();
            if data.len() > MAX_DATA {
                return Err(format!("{at}.data is larger than {MAX_DATA} bytes"));
            }
            let t = &e.touch;
            let url = |v: &Option<String>| {
                let v = cut(v, MAX_URL);
                if site.collect_contact {
                    v
                } else {
                    scrub_url(v)
                }
            };
            Ok(NewWidgetEvent {
                site: site.key.clone(),
                event_id: e.id.clone(),
                visitor_id: visitor.to_owned(),
                session_id: batch.session.clone(),
                event_type: e.event_type.clone(),
                occurred_at: e.ts,
                conversation_id: e.conversation_id,
                page_url: url(&e.page.url),
                page_path: url(&e.page.path),
                referrer: url(&e.page.referrer),
                touch: drift_types::widget::Touch {
                    utm_source: cut(&t.utm_source, MAX_UTM),
                    utm_medium: cut(&t.utm_medium, MAX_UTM),
                    utm_campaign: cut(&t.utm_campaign, MAX_UTM),
                    utm_term: cut(&t.utm_term, MAX_UTM),
                    utm_content: cut(&t.utm_content, MAX_UTM),
                    landing_page: url(&t.landing_page),
                    referrer: url(&t.referrer),
                },
                data,
            })
        })
        .collect()
}

/// Drops emails and phone numbers from a payload: keys named for them, and any string that
/// holds an email address.
fn scrub(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "email" | "phone" | "phoneNumber"))
                .map(|(k, v)| (k.clone(), scrub(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(scrub).collect()),
        Value::String(s) if holds_email(s) => Value::String("[removed]".into()),
        other => other.clone(),
    }
}

fn holds_email(s: &str) -> bool {
    s.split(|c: char| {
        c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';' | '"' | '\'' | '(' | ')')
    })
    .any(|w| match w.split_once('@') {
        Some((user, domain)) => {
            !user.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_phone_numbers_are_scrubbed_wherever_they_sit() {
        let v = json!({"data": {"email": "ada@example.com", "conversationId": 7},
            "phone": "+1 555", "note": "write to ada@example.com please", "ok": "a @ b"});
        let s = scrub(&v);
        assert_eq!(
            s,
            json!({"data": {"conversationId": 7}, "note": "[removed]", "ok": "a @ b"})
        );
    }

    #[test]
    fn a_query_value_holding_an_email_is_removed_from_a_url() {
        let u = scrub_url(Some(
            "https://x.com/p?utm_source=mail&email=ada%40example.com".into(),
        ));
        assert_eq!(
            u.as_deref(),
            Some("https://x.com/p?utm_source=mail&email=%5Bremoved%5D")
        );
        let plain = "https://x.com/p?utm_source=mail";
        assert_eq!(scrub_url(Some(plain.into())).as_deref(), Some(plain));
        assert_eq!(scrub_url(Some("/p?to=ada@example.com".into())), None);
    }
}
