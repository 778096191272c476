//! HubSpot CRM v3 objects: contacts (unique by lower-cased email), notes and meetings, under
//! `/crm/v3/objects` and the dated `/crm/objects/2026-03` (crm-apis.md §1).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::common::{Answer, Record, Target};
use super::hubspot_gate::{admit, error, not_found, rejected, with};
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
    // The custom boolean property driftbridge's opt-outs set by default (created by the user).
    "drift_unsubscribed",
    // Custom properties a widget-bridge user creates for first-touch attribution
    // (docs/WIDGET.md maps them).
    "drift_utm_source",
    "drift_utm_medium",
    "drift_utm_campaign",
    "drift_landing_page",
];
/// Note properties, with the custom one driftbridge uses.
const NOTE_PROPS: &[&str] = &[
    "hs_note_body",
    "hs_timestamp",
    "hubspot_owner_id",
    "hs_attachment_ids",
    "drift_conversation_id",
];

/// Meeting properties (crm-apis.md §8), with the custom key driftbridge finds them by.
const MEETING_PROPS: &[&str] = &[
    "hs_timestamp",
    "hs_meeting_title",
    "hs_meeting_body",
    "hs_meeting_start_time",
    "hs_meeting_end_time",
    "hs_meeting_outcome",
    "hubspot_owner_id",
    "drift_meeting_key",
];

fn object_json(r: &Record) -> Value {
    let mut props: Map<String, Value> = r.fields.clone().into_iter().collect();
    props.insert("hs_object_id".into(), Value::String(r.id.clone()));
    json!({"id": r.id, "properties": props, "createdAt": drift_types::EpochMillis(r.created_ms).to_iso8601(),
           "updatedAt": drift_types::EpochMillis(drift_types::now_ms()).to_iso8601(), "archived": false})
}

/// String-valued properties, checked against the object's known ones.
fn properties(object: &str, body: &Value) -> Result<BTreeMap<String, Value>, Response> {
    let known = match object {
        "contacts" => CONTACT_PROPS,
        "meetings" => MEETING_PROPS,
        _ => NOTE_PROPS,
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
                && data.blocklist.contains(&e.to_lowercase())
            {
                return Err(rejected(
                    st,
                    error(
                        StatusCode::BAD_REQUEST,
                        "VALIDATION_ERROR",
                        "this email was GDPR-deleted and is blocklisted",
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
        "notes" | "meetings" => {
            // HubSpot's association type ids: note to contact 202, meeting to contact 200.
            let assoc_type = if object == "notes" { 202 } else { 200 };
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
                    == Some(assoc_type);
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
        "meetings" => data.meetings.get(&i),
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

/// `DELETE /{object}/{id}`: 204, or 404 when no such object exists (a plain delete; HubSpot
/// keeps it restorable for 90 days, the simulator does not).
async fn delete_object(
    State(st): St,
    Path((object, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    let h = admit(&st, &headers, false).await?;
    let id: u64 = id.parse().map_err(|_| not_found())?;
    let _held = st.hold_delete().await;
    let mut data = st.hubspot.lock();
    if !data.remove(&object, id) {
        return Err(not_found());
    }
    drop(data);
    st.wrote(Target::Hubspot, &object, "delete", &id.to_string());
    Ok((StatusCode::NO_CONTENT, h).into_response())
}

/// `POST /contacts/gdpr-delete` `{objectId, idProperty?}`: erases the contact and its
/// associations for good; an email that matches no contact joins the blocklist (204 both).
async fn gdpr_delete(
    State(st): St,
    Path(object): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Answer {
    let h = admit(&st, &headers, false).await?;
    let Some(key) = body.get("objectId").and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }) else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "objectId is required",
        ));
    };
    if object != "contacts" {
        return Err(not_found());
    }
    let by_email = body.get("idProperty").and_then(Value::as_str) == Some("email");
    let _held = st.hold_delete().await;
    let mut data = st.hubspot.lock();
    let id = if by_email {
        data.by_email.get(&key.to_lowercase()).copied()
    } else {
        key.parse().ok()
    };
    match id.filter(|i| data.remove("contacts", *i)) {
        Some(i) => {
            drop(data);
            st.wrote(Target::Hubspot, "contacts", "gdpr_delete", &i.to_string());
        }
        None if by_email => {
            data.blocklist.insert(key.to_lowercase());
        }
        None => return Err(not_found()),
    }
    Ok((StatusCode::NO_CONTENT, h).into_response())
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
        "meetings" => &data.meetings,
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
        .route("/{object}/gdpr-delete", post(gdpr_delete))
        .route(
            "/{object}/{id}",
            get(get_object).patch(patch_object).delete(delete_object),
        )
}

/// `/hubspot/...` routes.
pub fn routes() -> Router<Arc<CrmState>> {
    Router::new()
        .nest("/crm/v3/objects", object_routes())
        .nest("/crm/objects/2026-03", object_routes())
}
