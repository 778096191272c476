//! What every HubSpot simulator call passes first (the token, latency, faults and the
//! 10-second or per-second buckets) and HubSpot's error shape.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::common::{FaultMode, Target};
use super::state::CrmState;

pub(super) fn error(status: StatusCode, category: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(
            json!({"status": "error", "message": message.into(), "category": category,
                    "correlationId": format!("sim-{}", drift_types::now_ms())}),
        ),
    )
        .into_response()
}

pub(super) fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        "resource not found",
    )
}

/// Auth, latency, faults and the 10-second (or search per-second) bucket.
pub(super) async fn admit(
    st: &CrmState,
    headers: &HeaderMap,
    search: bool,
) -> Result<HeaderMap, Response> {
    let fault = st.enter(Target::Hubspot).await;
    let s = st.settings.lock().clone();
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if token != Some(s.hubspot_token.as_str()) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
        ));
    }
    let limited = |policy: &str, message: &str, wait_ms: u64| {
        st.count(Target::Hubspot, |c| {
            c.throttled += u64::from(fault.is_none())
        });
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            Json(
                json!({"status": "error", "message": message, "errorType": "RATE_LIMIT",
                        "correlationId": "sim", "policyName": policy, "requestId": "sim"}),
            ),
        )
            .into_response();
        let h = r.headers_mut();
        h.insert("x-hubspot-ratelimit-interval-milliseconds", wait_ms.into());
        h.insert("x-hubspot-ratelimit-max", s.hubspot_per_10s.into());
        h.insert("x-hubspot-ratelimit-remaining", 0.into());
        r
    };
    match fault {
        Some(FaultMode::RateLimit) => {
            return Err(limited(
                "TEN_SECONDLY_ROLLING",
                "You have reached your ten_secondly_rolling limit.",
                10_000,
            ));
        }
        Some(FaultMode::Unavailable) => {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "The service is temporarily unavailable",
            ));
        }
        None => {}
    }
    let mut data = st.hubspot.lock();
    let mut out = HeaderMap::new();
    if search {
        if data
            .secondly
            .take(s.hubspot_search_per_sec, Duration::from_secs(1))
            .is_err()
        {
            return Err(limited(
                "SECONDLY",
                "You have reached your secondly limit.",
                1000,
            ));
        }
    } else {
        match data
            .ten_secondly
            .take(s.hubspot_per_10s, Duration::from_secs(10))
        {
            Ok(left) => {
                out.insert("x-hubspot-ratelimit-max", s.hubspot_per_10s.into());
                out.insert("x-hubspot-ratelimit-remaining", left.into());
                out.insert("x-hubspot-ratelimit-interval-milliseconds", 10_000.into());
            }
            Err(_) => {
                return Err(limited(
                    "TEN_SECONDLY_ROLLING",
                    "You have reached your ten_secondly_rolling limit.",
                    10_000,
                ));
            }
        }
    }
    Ok(out)
}

pub(super) fn with(h: HeaderMap, status: StatusCode, body: Value) -> Response {
    (status, h, Json(body)).into_response()
}

pub(super) fn rejected(st: &CrmState, r: Response) -> Response {
    st.count(Target::Hubspot, |c| c.rejected += 1);
    r
}
