//! Salesforce: the refresh-token flow with `instance_url`, sessions that can be expired,
//! sObject create / update / upsert by external id on Lead, Contact, Task and Event, a SOQL subset
//! (`SELECT Id[, ...] FROM X WHERE F = 'v' [AND G = false] [LIMIT n]`), required fields,
//! error arrays and `Sforce-Limit-Info` (crm-apis.md §2).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde_json::{Value, json};

use super::common::{Answer, FaultMode, Record, Target};
use super::state::CrmState;

/// External-id fields per object.
const EXTERNAL_IDS: &[(&str, &str)] = &[
    ("Lead", "Drift_Email__c"),
    ("Task", "Drift_Conversation_Id__c"),
    ("Event", "Drift_Meeting_Key__c"),
];
const REQUIRED: &[(&str, &[&str])] = &[
    ("Lead", &["LastName", "Company"]),
    ("Contact", &["LastName"]),
    ("Task", &[]),
    ("Event", &["StartDateTime", "EndDateTime"]),
];
fn errors(status: StatusCode, code: &str, message: impl Into<String>, fields: &[&str]) -> Response {
    (
        status,
        Json(json!([{"message": message.into(), "errorCode": code, "fields": fields}])),
    )
        .into_response()
}

type St = State<Arc<CrmState>>;

fn limit_exceeded() -> Response {
    errors(
        StatusCode::FORBIDDEN,
        "REQUEST_LIMIT_EXCEEDED",
        "TotalRequests Limit exceeded.",
        &[],
    )
}

fn not_found() -> Response {
    errors(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The requested resource does not exist",
        &[],
    )
}

/// `POST /salesforce/services/oauth2/token` (refresh_token grant).
async fn token(
    State(st): St,
    headers: HeaderMap,
    axum::Form(form): axum::Form<BTreeMap<String, String>>,
) -> Response {
    st.enter(Target::Salesforce).await;
    let s = st.settings.lock().clone();
    let bad = |e: &str, d: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": e, "error_description": d})),
        )
            .into_response()
    };
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return bad("unsupported_grant_type", "grant type not supported");
    }
    if form.get("client_id") != Some(&s.salesforce_client_id) {
        return bad("invalid_client_id", "client identifier invalid");
    }
    if form.get("client_secret") != Some(&s.salesforce_client_secret) {
        return bad("invalid_client", "invalid client credentials");
    }
    if form.get("refresh_token") != Some(&s.salesforce_refresh_token) {
        return bad("invalid_grant", "expired access/refresh token");
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let mut data = st.salesforce.lock();
    data.sessions_issued += 1;
    let n = data.sessions_issued;
    let access = format!(
        "00Dsim!{n}{:08x}",
        drift_types::now_ms() as u64 & 0xffff_ffff
    );
    data.sessions.insert(access.clone());
    drop(data);
    let mut body = json!({"access_token": access, "instance_url": format!("http://{host}/salesforce"),
                "id": "https://login.salesforce.com/id/00Dsim/005sim", "token_type": "Bearer",
                "issued_at": drift_types::now_ms().to_string(), "signature": "c2ltdWxhdGVk", "scope": "api refresh_token"});
    if s.salesforce_rotate_refresh {
        let next = format!("sim-sf-refresh-{n}-{:x}", drift_types::now_ms());
        st.settings.lock().salesforce_refresh_token = next.clone();
        body["refresh_token"] = json!(next);
    }
    Json(body).into_response()
}

/// Auth, latency, faults and the daily allocation.
async fn admit(st: &CrmState, headers: &HeaderMap) -> Result<HeaderMap, Response> {
    let fault = st.enter(Target::Salesforce).await;
    let limit = st.settings.lock().salesforce_daily_limit;
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let mut data = st.salesforce.lock();
    if !token.is_some_and(|t| data.sessions.contains(t)) {
        return Err(errors(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
            &[],
        ));
    }
    match fault {
        Some(FaultMode::RateLimit) => {
            return Err(limit_exceeded());
        }
        Some(FaultMode::Unavailable) => {
            return Err(errors(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVER_UNAVAILABLE",
                "Service temporarily unavailable",
                &[],
            ));
        }
        None => {}
    }
    if data.used >= limit {
        st.count(Target::Salesforce, |c| c.throttled += 1);
        return Err(limit_exceeded());
    }
    data.used += 1;
    let mut h = HeaderMap::new();
    if let Ok(v) = format!("api-usage={}/{limit}", data.used).parse() {
        h.insert("sforce-limit-info", v);
    }
    Ok(h)
}

fn known(object: &str) -> bool {
    REQUIRED.iter().any(|(o, _)| *o == object)
}

/// Validates and writes; (id, created).
fn write(
    st: &CrmState,
    object: &str,
    existing: Option<String>,
    body: &Value,
) -> Result<(String, bool), Response> {
    let Some(fields) = body.as_object() else {
        return Err(errors(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "the body must be a JSON object",
            &[],
        ));
    };
    let mut data = st.salesforce.lock();
    if let Some(who) = fields.get("WhoId").and_then(Value::as_str) {
        let ok = ["Lead", "Contact"]
            .iter()
            .any(|o| data.objects.get(*o).is_some_and(|m| m.contains_key(who)));
        if !ok {
            st.count(Target::Salesforce, |c| c.rejected += 1);
            return Err(errors(
                StatusCode::BAD_REQUEST,
                "INVALID_CROSS_REFERENCE_KEY",
                format!("invalid cross reference id: {who}"),
                &["WhoId"],
            ));
        }
    }
    let id = match existing {
        Some(id) => {
            let rec = data
                .objects
                .get_mut(object)
                .and_then(|m| m.get_mut(&id))
                .ok_or_else(not_found)?;
            for (k, v) in fields {
                rec.fields.insert(k.clone(), v.clone());
            }
            rec.updates += 1;
            drop(data);
            st.wrote(Target::Salesforce, object, "update", &id);
            return Ok((id, false));
        }
        None => {
            let required = REQUIRED
                .iter()
                .find(|(o, _)| *o == object)
                .map_or(&[][..], |(_, r)| r);
            let missing: Vec<&str> = required
                .iter()
                .filter(|f| {
                    fields
                        .get(**f)
                        .and_then(Value::as_str)
                        .is_none_or(|s| s.trim().is_empty())
                })
                .copied()
                .collect();
            if !missing.is_empty() {
                st.count(Target::Salesforce, |c| c.rejected += 1);
                return Err(errors(
                    StatusCode::BAD_REQUEST,
                    "REQUIRED_FIELD_MISSING",
                    format!("Required fields are missing: [{}]", missing.join(", ")),
                    &missing,
                ));
            }
            data.new_id(object)
        }
    };
    let mut rec = Record {
        id: id.clone(),
        fields: BTreeMap::new(),
        associations: Vec::new(),
        created_ms: drift_types::now_ms(),
        updates: 0,
    };
    for (k, v) in fields {
        rec.fields.insert(k.clone(), v.clone());
    }
    if object == "Lead" {
        rec.fields.insert("IsConverted".into(), Value::Bool(false));
    }
    data.objects
        .entry(object.to_owned())
        .or_default()
        .insert(id.clone(), rec);
    drop(data);
    st.wrote(Target::Salesforce, object, "create", &id);
    Ok((id, true))
}

async fn create(
    State(st): St,
    Path((_v, object)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Answer {
    let h = admit(&st, &headers).await?;
    if !known(&object) {
        return Err(errors(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("sObject type '{object}' is not supported."),
            &[],
        ));
    }
    let (id, _) = write(&st, &object, None, &body)?;
    Ok((
        StatusCode::CREATED,
        h,
        Json(json!({"id": id, "success": true, "errors": []})),
    )
        .into_response())
}

async fn update(
    State(st): St,
    Path((_v, object, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Answer {
    let h = admit(&st, &headers).await?;
    write(&st, &object, Some(id), &body)?;
    Ok((StatusCode::NO_CONTENT, h).into_response())
}

/// `DELETE .../sobjects/{object}/{id}`: 204, or 404 `NOT_FOUND` when no such record exists.
async fn delete_record(
    State(st): St,
    Path((_v, object, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Answer {
    let h = admit(&st, &headers).await?;
    let _held = st.hold_delete().await;
    let removed = st
        .salesforce
        .lock()
        .objects
        .get_mut(&object)
        .and_then(|m| m.remove(&id));
    if removed.is_none() {
        return Err(not_found());
    }
    st.wrote(Target::Salesforce, &object, "delete", &id);
    Ok((StatusCode::NO_CONTENT, h).into_response())
}

async fn get_record(
    State(st): St,
    Path((_v, object, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Answer {
    let h = admit(&st, &headers).await?;
    let data = st.salesforce.lock();
    let r = data
        .objects
        .get(&object)
        .and_then(|m| m.get(&id))
        .ok_or_else(not_found)?;
    let mut v = json!(r.fields);
    v["Id"] = json!(r.id);
    Ok((h, Json(v)).into_response())
}

/// Upsert by external id: 201 created, 200 updated, 300 when several match.
async fn upsert(
    State(st): St,
    Path((_v, object, field, value)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    Json(mut body): Json<Value>,
) -> Answer {
    let h = admit(&st, &headers).await?;
    if !EXTERNAL_IDS.contains(&(object.as_str(), field.as_str())) {
        return Err(errors(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Provided external ID field does not exist or is not accessible: {field}"),
            &[],
        ));
    }
    if body.get(&field).is_some() {
        return Err(errors(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            format!("The field {field} cannot be both in the body and the URL"),
            &[],
        ));
    }
    body[&field] = Value::String(value.clone());
    // Find and write under one lock, so two upserts of one key cannot both create.
    let _serial = st.upserts.lock().await;
    let matches: Vec<String> = st
        .salesforce
        .lock()
        .objects
        .get(&object)
        .map(|m| {
            m.values()
                .filter(|r| r.fields.get(&field).and_then(Value::as_str) == Some(value.as_str()))
                .map(|r| r.id.clone())
                .collect()
        })
        .unwrap_or_default();
    if matches.len() > 1 {
        return Ok((StatusCode::MULTIPLE_CHOICES, Json(json!(matches))).into_response());
    }
    let (id, created) = write(&st, &object, matches.into_iter().next(), &body)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        h,
        Json(json!({"id": id, "success": true, "errors": [], "created": created})),
    )
        .into_response())
}

/// A parsed query: selected fields, object, `field = value` predicates, limit.
type Soql = (Vec<String>, String, Vec<(String, Value)>, usize);

/// The SOQL subset.
fn parse_soql(q: &str) -> Option<Soql> {
    let rest = q.trim().strip_prefix("SELECT ")?;
    let (fields, rest) = rest.split_once(" FROM ")?;
    let fields: Vec<String> = fields.split(',').map(|f| f.trim().to_owned()).collect();
    let (object, rest) = match rest.split_once(' ') {
        Some((o, r)) => (o.to_owned(), r.trim().to_owned()),
        None => (rest.trim().to_owned(), String::new()),
    };
    let (cond, limit) = match rest.rsplit_once("LIMIT ") {
        Some((c, l)) => (c.trim().to_owned(), l.trim().parse().ok()?),
        None => (rest.clone(), 2000),
    };
    let mut preds = Vec::new();
    if let Some(c) = cond.strip_prefix("WHERE ") {
        for p in c.split(" AND ") {
            let (f, v) = p.split_once('=')?;
            let v = v.trim();
            let value = if let Some(s) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                Value::String(s.replace("\\'", "'").replace("\\\\", "\\"))
            } else {
                match v {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => return None,
                }
            };
            preds.push((f.trim().to_owned(), value));
        }
    } else if !cond.is_empty() {
        return None;
    }
    Some((fields, object, preds, limit))
}

async fn query(
    State(st): St,
    Path(version): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Answer {
    let h = admit(&st, &headers).await?;
    let text = q.get("q").cloned().unwrap_or_default();
    let Some((fields, object, preds, limit)) = parse_soql(&text) else {
        return Err(errors(
            StatusCode::BAD_REQUEST,
            "MALFORMED_QUERY",
            format!("unsupported query: {text}"),
            &[],
        ));
    };
    let data = st.salesforce.lock();
    let records: Vec<Value> = data
        .objects
        .get(&object)
        .into_iter()
        .flat_map(|m| m.values())
        .filter(|r| preds.iter().all(|(f, v)| match (r.fields.get(f), v) {
            (Some(Value::String(a)), Value::String(b)) => a.eq_ignore_ascii_case(b),
            (Some(a), b) => a == b,
            (None, _) => false,
        }))
        .take(limit)
        .map(|r| {
            let mut v = json!({"attributes": {"type": object, "url": format!("/services/data/{version}/sobjects/{object}/{}", r.id)}});
            for f in &fields {
                v[f] = if f == "Id" { json!(r.id) } else { r.fields.get(f).cloned().unwrap_or(Value::Null) };
            }
            v
        })
        .collect();
    Ok((
        h,
        Json(json!({"totalSize": records.len(), "done": true, "records": records})),
    )
        .into_response())
}

/// `POST /sim/crm/salesforce/expire`: every session becomes invalid.
pub async fn expire(State(st): St) -> Json<Value> {
    let mut data = st.salesforce.lock();
    let n = data.sessions.len();
    data.sessions.clear();
    Json(json!({"expired": n}))
}

/// `POST /sim/crm/salesforce/seed` with `{"object": "Contact", "fields": {...}}`.
pub async fn seed(State(st): St, Json(body): Json<Value>) -> Response {
    let object = body
        .get("object")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !known(&object) {
        return errors(
            StatusCode::BAD_REQUEST,
            "INVALID_TYPE",
            "object must be Lead, Contact or Task",
            &[],
        );
    }
    match write(
        &st,
        &object,
        None,
        body.get("fields").unwrap_or(&Value::Null),
    ) {
        Ok((id, _)) => Json(json!({"id": id})).into_response(),
        Err(r) => r,
    }
}

/// `/salesforce/...` routes.
pub fn routes() -> Router<Arc<CrmState>> {
    Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/services/data/{version}/query", get(query))
        .route("/services/data/{version}/sobjects/{object}", post(create))
        .route(
            "/services/data/{version}/sobjects/{object}/{id}",
            get(get_record).patch(update).delete(delete_record),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/{field}/{value}",
            patch(upsert),
        )
}
