//! The admin JSON API (`/admin/api/*`) and `/metrics` need `Authorization: Bearer <admin
//! token>` (the console under `/admin` has its own sign-in, [`crate::console`]). A wrong or missing token gets 401 and is logged with
//! where it came from, never with what was presented.

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use drift_types::{ConversationId, OrgId};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::{ApiError, AppState};

/// Lets the request through only with the admin bearer token.
pub async fn require_admin(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if path == "/metrics" && st.metrics_public {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok = match (&st.admin_token, presented) {
        (Some(want), Some(got)) => bool::from(want.expose().as_bytes().ct_eq(got.as_bytes())),
        _ => false,
    };
    if ok {
        return next.run(req).await;
    }
    tracing::warn!(
        http.path = %path,
        token.presented = presented.is_some(),
        "admin request refused"
    );
    let message = if st.admin_token.is_none() {
        "admin routes are closed: set admin.token in the config"
    } else {
        "this route needs Authorization: Bearer <admin token>"
    };
    let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "admin request failed");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the request failed",
    )
}

/// `GET /admin/api/tenants`.
pub async fn tenants(State(st): State<AppState>) -> Result<Response, ApiError> {
    let Some(t) = &st.tenants else {
        return Ok(Json(json!({"tenants": []})).into_response());
    };
    let list = t.list().await.map_err(internal)?;
    Ok(Json(json!({"tenants": list})).into_response())
}

/// `GET /admin/api/sinks`: each sink's health (`up`, the error while down, since when).
pub async fn sinks(State(st): State<AppState>) -> Response {
    let list: serde_json::Map<String, serde_json::Value> = st
        .sinks
        .health()
        .into_iter()
        .map(|(name, h)| (name, json!(h)))
        .collect();
    Json(json!({ "sinks": list })).into_response()
}

/// `GET /admin/api/jobs/dead`.
pub async fn dead_jobs(State(st): State<AppState>) -> Result<Response, ApiError> {
    let jobs = st
        .queue
        .list(bridge_queue::JobState::Dead, 100)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|j| json!({"id": j.id, "name": j.name, "org_id": j.org_id, "attempts": j.attempts, "last_error": j.last_error}))
        .collect::<Vec<_>>();
    Ok(Json(json!({"jobs": jobs})).into_response())
}

/// `POST /admin/api/jobs/{id}/retry`.
pub async fn retry_job(
    State(st): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let done = st
        .queue
        .retry(id, drift_types::now_ms())
        .await
        .map_err(internal)?;
    if !done {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no dead job {id}"),
        ));
    }
    Ok(Json(json!({"status": "queued", "id": id})).into_response())
}

/// The replay query.
#[derive(Debug, Deserialize)]
pub struct ReplayQuery {
    org: i64,
    /// Deliver again to this sink (comma-separated for several).
    #[serde(default)]
    sink: Option<String>,
}

/// `POST /admin/api/replay/conversations/{id}?org=ORG[&sink=NAME]`: queues the conversation's
/// sync again (and its delivery to the named sinks).
pub async fn replay(
    State(st): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<ReplayQuery>,
) -> Result<Response, ApiError> {
    let sinks: Vec<String> = q
        .sink
        .iter()
        .flat_map(|s| s.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let job = if sinks.is_empty() {
        bridge_core::jobs::sync_job(OrgId(q.org), ConversationId(id))
    } else {
        bridge_core::jobs::replay_job(OrgId(q.org), ConversationId(id), &sinks)
    };
    let mut tx = st.queue.store().begin().await.map_err(internal)?;
    let job_id = st
        .queue
        .enqueue(&mut tx, &job, drift_types::now_ms())
        .await
        .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"status": "queued", "job_id": job_id})),
    )
        .into_response())
}
