//! `POST /webhooks/drift`: verify, store durably with its jobs, answer. Never calls Drift.

use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use bridge_core::ingest::{Accepted, Incoming};
use bridge_core::jobs::jobs_for;
use bridge_core::metrics::labels;
use bridge_store::events::dedup_key;
use drift_types::webhook::EVENT_TYPES;
use drift_types::{OrgId, WebhookEvent};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::{ApiError, AppState};

/// Largest accepted body: Drift's events are a few KiB; 1 MiB leaves room for long messages
/// while bounding what one request can make us buffer.
pub const MAX_BODY: usize = 1024 * 1024;

fn reject(st: &AppState, reason: &'static str, e: ApiError) -> ApiError {
    st.metrics.inc(
        "driftbridge_events_rejected_total",
        "Webhook requests rejected, by reason.",
        labels(&[("reason", reason)]),
        1,
    );
    e
}

pub(crate) async fn receive(
    State(st): State<AppState>,
    req: Request<Body>,
) -> Result<Json<Value>, ApiError> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    if !is_json(&parts.headers) {
        return Err(reject(
            &st,
            "content_type",
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON (Content-Type: application/json)",
            ),
        ));
    }
    let bytes = match crate::body::read(&parts.headers, body, MAX_BODY, st.body_read_timeout).await
    {
        Ok(b) => b,
        Err(crate::body::BodyError::TooLarge) => {
            return Err(reject(
                &st,
                "too_large",
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the body is larger than {MAX_BODY} bytes"),
                ),
            ));
        }
        Err(crate::body::BodyError::Timeout) => {
            return Err(reject(
                &st,
                "body_timeout",
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    format!(
                        "the body did not arrive within {} s",
                        st.body_read_timeout.as_secs()
                    ),
                ),
            ));
        }
    };
    // A lone surrogate escape (half of an emoji cut by a truncation) is replaced, not
    // refused: Drift never re-sends an event answered 4xx.
    let text = drift_types::lenient::replace_lone_surrogates(&bytes);
    let mut envelope: Value = serde_json::from_slice(&text).map_err(|e| {
        reject(
            &st,
            "invalid_json",
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("the body is not valid JSON: {e}"),
            ),
        )
    })?;
    let Some(obj) = envelope.as_object_mut() else {
        return Err(reject(
            &st,
            "invalid_envelope",
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_envelope",
                "the body must be a JSON object with type, orgId and data",
            ),
        ));
    };
    // Verify first, so an unauthenticated caller learns nothing about the envelope rules.
    let body_token = obj.remove("token");
    let presented = parts
        .headers
        .get("x-verification-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            body_token
                .as_ref()
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    if !verified(&st, presented.as_deref()) {
        return Err(reject(
            &st,
            "invalid_token",
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "missing or wrong verification token (X-Verification-Token header or body token)",
            ),
        ));
    }
    let envelope_error = |msg: &str| {
        reject(
            &st,
            "invalid_envelope",
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_envelope", msg),
        )
    };
    let event_type = match obj.get("type") {
        Some(Value::String(t)) if !t.is_empty() => t.clone(),
        _ => return Err(envelope_error("`type` must be a non-empty string")),
    };
    let org_id = match obj.get("orgId") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            serde_json::from_value::<OrgId>(v.clone())
                .map_err(|_| envelope_error("`orgId` must be an integer"))?,
        ),
    };
    let Some(data) = obj.get("data") else {
        return Err(envelope_error("`data` is missing"));
    };
    let (jobs, parse_error, conversation_id) = match WebhookEvent::from_parts(&event_type, data) {
        Ok(ev) => (
            jobs_for(&ev, org_id),
            None,
            ev.conversation_id().map(|c| c.0),
        ),
        Err(e) => {
            // Keep it anyway: losing an event because its shape surprised us is worse. It is
            // stored with the parser's words, counted, and listed for an operator to replay.
            tracing::warn!(event.r#type = %event_type, error = %e, "stored an event whose data did not parse; no job made");
            st.metrics.inc(
                "driftbridge_webhook_events_malformed_total",
                "Events of a known type stored with data that did not parse (driftbridge events malformed).",
                labels(&[("type", &event_type)]),
                1,
            );
            (Vec::new(), Some(format!("{e:#}")), None)
        }
    };
    let known = EVENT_TYPES.contains(&event_type.as_str());
    let type_label = if known {
        event_type.as_str()
    } else {
        "unknown"
    };
    let incoming = Incoming {
        org_id: org_id.map(|o| o.0),
        dedup_key: dedup_key(&event_type, org_id.map(|o| o.0), data),
        event_type: event_type.clone(),
        payload: envelope,
        jobs,
        parse_error,
        conversation_id,
    };
    let accepted = st.ingestor.ingest(incoming).await.map_err(|e| {
        tracing::error!(error = %e, "webhook not stored; answering 503 so Drift retries");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the event could not be stored; retry later",
        )
    })?;
    let m = &st.metrics;
    m.inc(
        "driftbridge_events_received_total",
        "Webhook events accepted (new or duplicate), by type.",
        labels(&[("type", type_label)]),
        1,
    );
    m.observe(
        "driftbridge_webhook_ack_seconds",
        "Time from request to durable acknowledgement.",
        String::new(),
        started.elapsed(),
    );
    Ok(Json(match accepted {
        Accepted::New(id) => json!({"status": "accepted", "event_id": id}),
        Accepted::Duplicate => {
            m.inc(
                "driftbridge_events_duplicate_total",
                "Re-delivered events acknowledged without a new job, by type.",
                labels(&[("type", type_label)]),
                1,
            );
            json!({"status": "duplicate"})
        }
    }))
}

fn is_json(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// Constant-time comparison against every configured token (no early exit on a match).
fn verified(st: &AppState, presented: Option<&str>) -> bool {
    let Some(p) = presented else { return false };
    let mut ok = 0u8;
    for t in st.verification_tokens.iter() {
        ok |= p.as_bytes().ct_eq(t.expose().as_bytes()).unwrap_u8();
    }
    ok == 1
}
