//! Marketo Engage: the identity token (same token until it expires), `leads.json` sync with
//! createOrUpdate on email, always-200 answers with `success`/`errors`, per-record
//! `status`/`reasons`, and the 100-per-20-s (606) and 10-concurrent (615) limits (crm-apis.md §3).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::common::{FaultMode, Record, Target};
use super::state::CrmState;

/// Lead fields the instance knows (standard REST names plus driftbridge's custom fields).
const FIELDS: &[&str] = &[
    "email",
    "firstName",
    "lastName",
    "company",
    "title",
    "phone",
    "city",
    "state",
    "country",
    "website",
    "leadSource",
    "leadStatus",
    "driftLastConversationId",
    "driftLastTranscript",
    "driftMeetingStart",
    "driftMeetingStatus",
    "unsubscribed",
];

type St = State<Arc<CrmState>>;

fn failure(code: &str, message: &str) -> Response {
    Json(
        json!({"requestId": format!("sim#{}", drift_types::now_ms()), "success": false,
                "errors": [{"code": code, "message": message}]}),
    )
    .into_response()
}

/// `GET|POST /marketo/identity/oauth/token` (client credentials, in the query or a form).
async fn token(
    State(st): St,
    Query(q): Query<BTreeMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    st.enter(Target::Marketo).await;
    let mut p = q;
    for (k, v) in url::form_urlencoded::parse(&body) {
        p.insert(k.into_owned(), v.into_owned());
    }
    let s = st.settings.lock().clone();
    if p.get("grant_type").map(String::as_str) != Some("client_credentials")
        || p.get("client_id") != Some(&s.marketo_client_id)
        || p.get("client_secret") != Some(&s.marketo_client_secret)
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unauthorized", "error_description": "Bad client credentials"})),
        )
            .into_response();
    }
    let mut data = st.marketo.lock();
    let now = Instant::now();
    let (tok, until) = match &data.token {
        Some((t, u)) if *u > now => (t.clone(), *u),
        _ => {
            data.next += 1;
            let t = format!(
                "{:08x}-sim-{:04}:int",
                drift_types::now_ms() as u64 & 0xffff_ffff,
                data.next
            );
            let u = now + Duration::from_secs(s.marketo_token_secs);
            data.token = Some((t.clone(), u));
            (t, u)
        }
    };
    let left = until.saturating_duration_since(now).as_secs();
    Json(json!({"access_token": tok, "token_type": "bearer", "expires_in": left, "scope": "apis@driftbridge.example"})).into_response()
}

struct Flight<'a>(&'a AtomicU32);
impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `POST /marketo/rest/v1/leads.json`.
async fn leads(State(st): St, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    call(&st, &headers, &body, sync_leads).await
}

/// `POST /marketo/rest/v1/leads/delete.json`: `{"input": [{"id": N}]}`, at most 300; each
/// lead answers `deleted`, or `skipped` with reason `1004` when no such lead exists.
async fn delete_leads(State(st): St, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let _held = st.hold_delete().await;
    call(&st, &headers, &body, remove_leads).await
}

/// The request's `input`: 1 to 300 leads.
#[allow(clippy::result_large_err)]
fn inputs(req: &Value) -> Result<Vec<Value>, Response> {
    let inputs = req
        .get("input")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if inputs.is_empty() || inputs.len() > 300 {
        return Err(failure("1003", "input must hold 1 to 300 leads"));
    }
    Ok(inputs)
}

fn remove_leads(st: &CrmState, req: Value) -> Response {
    let inputs = match inputs(&req) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let mut results = Vec::new();
    for i in inputs {
        let Some(id) = i.get("id").and_then(Value::as_u64) else {
            return failure("1003", "each input needs a numeric id");
        };
        let mut data = st.marketo.lock();
        match data.leads.remove(&id) {
            Some(_) => {
                data.by_email.retain(|_, v| *v != id);
                drop(data);
                st.wrote(Target::Marketo, "leads", "delete", &id.to_string());
                results.push(json!({"id": id, "status": "deleted"}));
            }
            None => results.push(json!({"id": id, "status": "skipped",
                "reasons": [{"code": "1004", "message": "Lead not found"}]})),
        }
    }
    Json(json!({"requestId": format!("sim#{}", drift_types::now_ms()), "success": true, "result": results}))
        .into_response()
}

/// One REST call: the token, faults, the concurrency and 20-second limits, then `op` on the
/// JSON body.
async fn call(
    st: &CrmState,
    headers: &HeaderMap,
    body: &[u8],
    op: fn(&CrmState, Value) -> Response,
) -> Response {
    let concurrent = st.marketo_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _f = Flight(&st.marketo_in_flight);
    let fault = st.enter(Target::Marketo).await;
    let s = st.settings.lock().clone();
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    {
        let data = st.marketo.lock();
        match (&data.token, bearer) {
            (Some((t, until)), Some(b)) if t == b => {
                if *until <= Instant::now() {
                    return failure("602", "Access token expired");
                }
            }
            _ => return failure("601", "Access token invalid"),
        }
    }
    match fault {
        Some(FaultMode::RateLimit) => {
            return failure("606", "Max rate limit '100' exceeded with in '20' secs");
        }
        Some(FaultMode::Unavailable) => return failure("608", "API Temporarily Unavailable"),
        None => {}
    }
    if concurrent > s.marketo_concurrency {
        st.count(Target::Marketo, |c| c.throttled += 1);
        return failure("615", "Concurrent access limit reached");
    }
    if st
        .marketo
        .lock()
        .window
        .take(s.marketo_per_20s, Duration::from_secs(20))
        .is_err()
    {
        st.count(Target::Marketo, |c| c.throttled += 1);
        return failure(
            "606",
            &format!(
                "Max rate limit '{}' exceeded with in '20' secs",
                s.marketo_per_20s
            ),
        );
    }
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return failure("609", "Invalid JSON");
    };
    op(st, req)
}

fn sync_leads(st: &CrmState, req: Value) -> Response {
    let action = req
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or("createOrUpdate");
    let lookup = req
        .get("lookupField")
        .and_then(Value::as_str)
        .unwrap_or("email");
    if !["createOrUpdate", "updateOnly"].contains(&action) || lookup != "email" {
        return failure(
            "1011",
            "the simulator supports createOrUpdate and updateOnly on email only",
        );
    }
    let inputs = match inputs(&req) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let mut results = Vec::new();
    for input in inputs {
        let Some(fields) = input.as_object() else {
            results.push(json!({"status": "skipped", "reasons": [{"code": "1003", "message": "Invalid data"}]}));
            continue;
        };
        if let Some(bad) = fields.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            st.count(Target::Marketo, |c| c.rejected += 1);
            results.push(json!({"status": "skipped", "reasons": [{"code": "1006", "message": format!("Field '{bad}' not found")}]}));
            continue;
        }
        let Some(email) = fields
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_lowercase)
        else {
            st.count(Target::Marketo, |c| c.rejected += 1);
            results.push(json!({"status": "skipped", "reasons": [{"code": "1003", "message": "Value for lookup field 'email' not found"}]}));
            continue;
        };
        let mut data = st.marketo.lock();
        match data.by_email.get(&email).copied() {
            Some(id) => {
                if let Some(r) = data.leads.get_mut(&id) {
                    r.fields.extend(fields.clone());
                    r.updates += 1;
                }
                drop(data);
                st.wrote(Target::Marketo, "leads", "update", &id.to_string());
                results.push(json!({"id": id, "status": "updated"}));
            }
            None if action == "updateOnly" => {
                results.push(json!({"status": "skipped",
                    "reasons": [{"code": "1004", "message": "Lead not found"}]}));
            }
            None => {
                data.next += 1;
                let id = 100 + data.next;
                data.by_email.insert(email, id);
                data.leads.insert(
                    id,
                    Record {
                        id: id.to_string(),
                        fields: fields.clone().into_iter().collect(),
                        associations: Vec::new(),
                        created_ms: drift_types::now_ms(),
                        updates: 0,
                    },
                );
                drop(data);
                st.wrote(Target::Marketo, "leads", "create", &id.to_string());
                results.push(json!({"id": id, "status": "created"}));
            }
        }
    }
    Json(json!({"requestId": format!("sim#{}", drift_types::now_ms()), "success": true, "result": results}))
        .into_response()
}

/// `/marketo/...` routes.
pub fn routes() -> Router<Arc<CrmState>> {
    Router::new()
        .route("/identity/oauth/token", get(token).post(token))
        .route("/rest/v1/leads.json", post(leads))
        .route("/rest/v1/leads/delete.json", post(delete_leads))
}
