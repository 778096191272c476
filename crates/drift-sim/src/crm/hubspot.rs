//! HubSpot CRM v3 objects: contacts (unique by lower-cased email) and notes, under
//! `/crm/v3/objects` and the dated `/crm/objects/2026-03` (crm-apis.md §1).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::common::{Answer, FaultMode, Record, Target};
use super::state::CrmState;

/// Contact properties HubSpot knows by default.
const CONTACT_PROPS: &[&str] = &[
    "email",
    "firstname",
    "lastname",
    "company",
    "jobtitle",
    "phone",
    "mobilephone",
    "city",
    "state",
    "country",
    "zip",
    "address",
    "website",
    "lifecyclestage",
    "hs_lead_status",
    "hubspot_owner_id",
];
/// Note properties, with the custom one driftbridge uses.
const NOTE_PROPS: &[&str] = &[
    "hs_note_body",
    "hs_timestamp",
    "hubspot_owner_id",
    "hs_attachment_ids",
    "drift_conversation_id",
];

fn error(status: StatusCode, category: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(
            json!({"status": "error", "message": message.into(), "category": category,
                    "correlationId": format!("sim-{}", drift_types::now_ms())}),
        ),
    )
        .into_response()
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        "resource not found",
    )
}

fn object_json(r: &Record) -> Value {
    let mut props: Map<String, Value> = r.fields.clone().into_iter().collect();
    props.insert("hs_object_id".into(), Value::String(r.id.clone()));
    json!({"id": r.id, "properties": props, "createdAt": drift_types::EpochMillis(r.created_ms).to_iso8601(),
           "updatedAt": drift_types::EpochMillis(drift_types::now_ms()).to_iso8601(), "archived": false})
}

/// String-valued properties, checked against the object's known ones.
fn properties(object: &str, body: &Value) -> Result<BTreeMap<String, Value>, Response> {
    let known = if object == "contacts" {
        CONTACT_PROPS
    } else {
        NOTE_PROPS
    };
    let mut out = BTreeMap::new();
    let mut bad = Vec::new();
    if let Some(p) = body.get("properties").and_then(Value::as_object) {
        for (k, v) in p {
            if !known.contains(&k.as_str()) {
                bad.push(k.clone());
                continue;
            }
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            out.insert(k.clone(), Value::String(s));
        }
    }
    if !bad.is_empty() {
        let errors: Vec<Value> = bad
            .iter()
            .map(|k| json!({"message": format!("Property \"{k}\" does not exist"), "code": "PROPERTY_DOESNT_EXIST",
                            "context": {"propertyName": [k]}}))
            .collect();
        return Err((
            StatusCode::BAD_REQUEST,
            Json(
                json!({"status": "error", "message": "Property values were not valid",
                        "category": "VALIDATION_ERROR", "errors": errors, "correlationId": "sim"}),
            ),
        )
            .into_response());
    }
    Ok(out)
}

/// Auth, latency, faults and the 10-second (or search per-second) bucket.
async fn admit(st: &CrmState, headers: &HeaderMap, search: bool) -> Result<HeaderMap, Response> {
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

fn with(h: HeaderMap, status: StatusCode, body: Value) -> Response {
    (status, h, Json(body)).into_response()
}

fn rejected(st: &CrmState, r: Response) -> Response {
    st.count(Target::Hubspot, |c| c.rejected += 1);
    r
}

type St = State<Arc<CrmState>>;

/// Creates a contact or note, with inline associations.
fn create(st: &CrmState, object: &str, body: &Value) -> Result<(u64, Value), Response> {
    let props = properties(object, body).map_err(|r| rejected(st, r))?;
    let mut data = st.hubspot.lock();
    let mut assoc = Vec::new();
    match object {
        "contacts" => {
            if ["email", "firstname", "lastname"].iter().all(|k| {
                props
                    .get(*k)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            }) {
                return Err(rejected(
                    st,
                    error(
                        StatusCode::BAD_REQUEST,
                        "VALIDATION_ERROR",
                        "A contact needs at least one of email, firstname, lastname",
                    ),
                ));
            }
            if let Some(e) = props.get("email").and_then(Value::as_str)
                && let Some(existing) = data.by_email.get(&e.to_lowercase())
            {
                return Err(rejected(
                    st,
                    error(
                        StatusCode::CONFLICT,
                        "CONFLICT",
                        format!("Contact already exists. Existing ID: {existing}"),
                    ),
                ));
            }
        }
        "notes" => {
            if props
                .get("hs_timestamp")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(rejected(
                    st,
                    error(
                        StatusCode::BAD_REQUEST,
                        "VALIDATION_ERROR",
                        "Property values were not valid: hs_timestamp is required",
                    ),
                ));
            }
            for a in body
                .get("associations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let to = a.pointer("/to/id").map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
                let type_ok = a
                    .pointer("/types/0/associationTypeId")
                    .and_then(Value::as_u64)
                    == Some(202);
                let exists = to
                    .as_deref()
                    .and_then(|t| t.parse::<u64>().ok())
                    .is_some_and(|id| data.contacts.contains_key(&id));
                if !(type_ok && exists) {
                    return Err(rejected(
                        st,
                        error(
                            StatusCode::BAD_REQUEST,
                            "VALIDATION_ERROR",
                            format!("invalid association {a}"),
                        ),
                    ));
                }
                assoc.extend(to);
            }
        }
        _ => {
            return Err(error(
                StatusCode::NOT_FOUND,
                "OBJECT_NOT_FOUND",
                format!("unknown object type {object}"),
            ));
        }
    }
    let id = data.id();
    if object == "contacts"
        && let Some(e) = props.get("email").and_then(Value::as_str)
    {
        data.by_email.insert(e.to_lowercase(), id);
    }
    let rec = Record {
        id: id.to_string(),
        fields: props,
        associations: assoc,
        created_ms: drift_types::now_ms(),
        updates: 0,
    };
    let json = object_json(&rec);
    data.table(object).map(|t| t.insert(id, rec));
    drop(data);
    st.wrote(Target::Hubspot, object, "create", &id.to_string());
    Ok((id, json))
}

fn update(st: &CrmState, object: &str, id: u64, body: &Value) -> Result<Value, Response> {
    let props = properties(object, body).map_err(|r| rejected(st, r))?;
    let mut data = st.hubspot.lock();
    if let Some(e) = props.get("email").and_then(Value::as_str)
        && object == "contacts"
        && data
            .by_email
            .get(&e.to_lowercase())
            .is_some_and(|o| *o != id)
    {
        return Err(rejected(
            st,
            error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                format!("Cannot set email on {id}: another contact already has that value."),
            ),
        ));
    }
    let rec = data
        .table(object)
        .and_then(|t| t.get_mut(&id))
        .ok_or_else(not_found)?;
    rec.fields.extend(props);
    rec.updates += 1;
    let json = object_json(rec);
    drop(data);
    st.wrote(Target::Hubspot, object, "update", &id.to_string());
    Ok(json)
}

fn resolve(st: &CrmState, id: &str, q: &HashMap<String, String>) -> Option<u64> {
    if q.get("idProperty").map(String::as_str) == Some("email") {
        st.hubspot.lock().by_email.get(&id.to_lowercase()).copied()
    } else {
        id.parse().ok()
    }
}

async fn post_object(
    State(st): St,
    Path(object): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Answer {
    let h = admit(&st, &headers, false).await?;
    let (_, json) = create(&st, &object, &body)?;
    Ok(with(h, StatusCode::CREATED, json))
}

async fn get_object(
    State(st): St,
    Path((object, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Answer {
    let h = admit(&st, &headers, false).await?;
    let data = st.hubspot.lock();
    let found = resolve(&st, &id, &q).and_then(|i| match object.as_str() {
        "contacts" => data.contacts.get(&i),
        "notes" => data.notes.get(&i),
        _ => None,
    });
    let r = found.ok_or_else(not_found)?;
    Ok(with(h, StatusCode::OK, object_json(r)))
}

async fn patch_object(
    State(st): St,
    Path((object, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Answer {
    let h = admit(&st, &headers, false).await?;
    let i = resolve(&st, &id, &q).ok_or_else(not_found)?;
    let json = update(&st, &object, i, &body)?;
    Ok(with(h, StatusCode::OK, json))
}

async fn batch_upsert(
    State(st): St,
    Path(object): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Answer {
    let h = admit(&st, &headers, false).await?;
    let inputs = body
        .get("inputs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if object != "contacts" || inputs.is_empty() || inputs.len() > 100 {
        return Err(rejected(
            &st,
            error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                "inputs must hold 1 to 100 contacts",
            ),
        ));
    }
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        if input.get("idProperty").and_then(Value::as_str) != Some("email") {
            errors.push(json!({"status": "error", "message": "idProperty must be a unique property (email)", "category": "VALIDATION_ERROR"}));
            continue;
        }
        let email = input
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_lowercase();
        let mut input = input.clone();
        if let Some(p) = input.get_mut("properties").and_then(Value::as_object_mut) {
            p.insert("email".into(), Value::String(email.clone()));
        }
        let existing = st.hubspot.lock().by_email.get(&email).copied();
        let r = match existing {
            Some(id) => update(&st, "contacts", id, &input).map(|j| (j, false)),
            // A concurrent upsert may create the email first: then this one updates it.
            None => create(&st, "contacts", &input)
                .map(|(_, j)| (j, true))
                .or_else(|e| {
                    let raced = st.hubspot.lock().by_email.get(&email).copied();
                    match raced {
                        Some(id) => update(&st, "contacts", id, &input).map(|j| (j, false)),
                        None => Err(e),
                    }
                }),
        };
        match r {
            Ok((mut j, new)) => {
                j["new"] = Value::Bool(new);
                results.push(j);
            }
            Err(_) => errors.push(json!({"status": "error", "message": format!("could not upsert {email}"), "category": "VALIDATION_ERROR"})),
        }
    }
    let now = drift_types::EpochMillis(drift_types::now_ms()).to_iso8601();
    let mut out = json!({"status": "COMPLETE", "results": results, "requestedAt": now, "startedAt": now, "completedAt": now});
    if errors.is_empty() {
        return Ok(with(h, StatusCode::OK, out));
    }
    if results.is_empty() {
        return Err(rejected(
            &st,
            error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                errors[0]["message"].as_str().unwrap_or("invalid"),
            ),
        ));
    }
    out["numErrors"] = errors.len().into();
    out["errors"] = Value::Array(errors);
    Ok(with(h, StatusCode::MULTI_STATUS, out))
}

async fn search(
    State(st): St,
    Path(object): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Answer {
    let h = admit(&st, &headers, true).await?;
    let lag = st.settings.lock().hubspot_search_lag_ms as i64;
    let filters: Vec<(String, String)> = body
        .pointer("/filterGroups/0/filters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|f| f.get("operator").and_then(Value::as_str) == Some("EQ"))
        .filter_map(|f| {
            Some((
                f.get("propertyName")?.as_str()?.to_owned(),
                f.get("value")?.as_str()?.to_owned(),
            ))
        })
        .collect();
    let limit = body
        .get("limit")
        .and_then(Value::as_u64)
        .unwrap_or(10)
        .min(200) as usize;
    let data = st.hubspot.lock();
    let table = match object.as_str() {
        "contacts" => &data.contacts,
        "notes" => &data.notes,
        _ => {
            return Err(error(
                StatusCode::NOT_FOUND,
                "OBJECT_NOT_FOUND",
                "unknown object",
            ));
        }
    };
    let cutoff = drift_types::now_ms() - lag;
    let hits: Vec<Value> = table
        .values()
        .filter(|r| r.created_ms <= cutoff)
        .filter(|r| {
            filters.iter().all(|(k, v)| {
                r.fields
                    .get(k)
                    .and_then(Value::as_str)
                    .is_some_and(|x| x.eq_ignore_ascii_case(v))
            })
        })
        .map(object_json)
        .collect();
    let total = hits.len();
    Ok(with(
        h,
        StatusCode::OK,
        json!({"total": total, "results": hits.into_iter().take(limit).collect::<Vec<_>>()}),
    ))
}

fn object_routes() -> Router<Arc<CrmState>> {
    Router::new()
        .route("/{object}", post(post_object))
        .route("/{object}/batch/upsert", post(batch_upsert))
        .route("/{object}/search", post(search))
        .route("/{object}/{id}", get(get_object).patch(patch_object))
}

/// `/hubspot/...` routes.
pub fn routes() -> Router<Arc<CrmState>> {
    Router::new()
        .nest("/crm/v3/objects", object_routes())
        .nest("/crm/objects/2026-03", object_routes())
}
