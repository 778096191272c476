//! Contacts, attributes, tags, timeline events.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use drift_types::{ContactId, ContactTag, ContactWrite, Data, OkResult, TimelineEvent};

use crate::middleware::Caller;
use crate::state::{SimError, SimResult};

use super::request::{Id, St, int_param, now, param, parse_json, query_pairs};

// ---- contacts ------------------------------------------------------------------------

/// `GET /contacts/{id}`.
pub async fn get_contact(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Id(id): Id<i64>,
) -> SimResult<Json<Data<drift_types::Contact>>> {
    caller.require("contact_read")?;
    let world = st.world.lock();
    let c = world
        .org(caller.org)?
        .contacts
        .get(&ContactId(id))
        .ok_or_else(|| SimError::not_found(format!("contact {id} not found")))?;
    Ok(Json(Data { data: c.clone() }))
}

/// `GET /contacts?email=&limit=` or `?idType=external&id=..`.
pub async fn query_contacts(
    State(st): St,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> SimResult<Response> {
    caller.require("contact_read")?;
    let pairs = query_pairs(&q);
    let world = st.world.lock();
    let org = world.org(caller.org)?;
    if param(&pairs, "idType") == Some("external") {
        let ids: Vec<String> = pairs
            .iter()
            .filter(|(k, _)| k == "id")
            .map(|(_, v)| v.clone())
            .collect();
        if ids.is_empty() {
            return Err(SimError::invalid("idType=external needs at least one id"));
        }
        let found: Vec<_> = org
            .contacts_by_external_id(&ids)
            .into_iter()
            .cloned()
            .collect();
        return Ok(Json(Data { data: found }).into_response());
    }
    let email = param(&pairs, "email")
        .filter(|e| !e.is_empty())
        .ok_or_else(|| SimError::invalid("give email=, or idType=external with id="))?;
    let limit = int_param::<usize>(&pairs, "limit")?
        .unwrap_or(25)
        .clamp(1, 100);
    let offset = int_param::<usize>(&pairs, "offset")?.unwrap_or(0);
    let all = org.contacts_by_email(email);
    let page: Vec<_> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|c| (*c).clone())
        .collect();
    let mut resp = Json(Data { data: page }).into_response();
    if offset + limit < all.len() {
        let link = format!(
            "</contacts?email={}&limit={limit}&offset={}>; rel='next'",
            url::form_urlencoded::byte_serialize(email.as_bytes()).collect::<String>(),
            offset + limit
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().insert(header::LINK, v);
        }
    }
    Ok(resp)
}

/// `POST /contacts`.
pub async fn create_contact(
    State(st): St,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> SimResult<Json<Data<drift_types::Contact>>> {
    caller.require("contact_write")?;
    let w: ContactWrite = parse_json(&body)?;
    let mut world = st.world.lock();
    let id = ContactId(world.fresh_id());
    let c = world
        .org_mut(caller.org)?
        .create_contact(id, w.attributes, now())?;
    Ok(Json(Data { data: c }))
}

/// `PATCH /contacts/{id}`.
pub async fn update_contact(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Id(id): Id<i64>,
    body: Bytes,
) -> SimResult<Json<Data<drift_types::Contact>>> {
    caller.require("contact_write")?;
    let w: ContactWrite = parse_json(&body)?;
    let c = st
        .world
        .lock()
        .org_mut(caller.org)?
        .update_contact(ContactId(id), w.attributes)?;
    Ok(Json(Data { data: c }))
}

/// `DELETE /contacts/{id}`.
pub async fn delete_contact(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Id(id): Id<i64>,
) -> SimResult<Json<OkResult>> {
    caller.require("contact_write")?;
    let mut world = st.world.lock();
    let org = world.org_mut(caller.org)?;
    org.contacts
        .remove(&ContactId(id))
        .ok_or_else(|| SimError::not_found(format!("contact {id} not found")))?;
    org.contact_tags.remove(&ContactId(id));
    Ok(Json(OkResult::ok()))
}

/// `POST /contacts/timeline`.
pub async fn timeline(
    State(st): St,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> SimResult<Json<Data<TimelineEvent>>> {
    caller.require("contact_write")?;
    let mut ev: TimelineEvent = parse_json(&body)?;
    if ev.event.trim().is_empty() {
        return Err(SimError::invalid("event is required"));
    }
    let mut world = st.world.lock();
    let org = world.org_mut(caller.org)?;
    let known = match (&ev.contact_id, &ev.external_id) {
        (Some(id), _) => org.contacts.contains_key(id),
        (None, Some(x)) => !org
            .contacts_by_external_id(std::slice::from_ref(x))
            .is_empty(),
        (None, None) => return Err(SimError::invalid("contactId or externalId is required")),
    };
    if !known {
        return Err(SimError::not_found(
            "no contact with that contactId/externalId",
        ));
    }
    ev.created_at.get_or_insert_with(now);
    org.timeline.push(ev.clone());
    Ok(Json(Data { data: ev }))
}

/// `GET /contacts/attributes`.
pub async fn attributes(
    State(st): St,
    Extension(caller): Extension<Caller>,
) -> SimResult<Json<Data<drift_types::AttributeDefinitions>>> {
    caller.require("all_contact_read")?;
    let world = st.world.lock();
    let properties = world.org(caller.org)?.attribute_defs.clone();
    Ok(Json(Data {
        data: drift_types::AttributeDefinitions { properties },
    }))
}

/// `GET /contacts/{id}/tags`.
pub async fn get_tags(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Id(id): Id<i64>,
) -> SimResult<Json<Data<Vec<ContactTag>>>> {
    caller.require("contact_read")?;
    let world = st.world.lock();
    let org = world.org(caller.org)?;
    if !org.contacts.contains_key(&ContactId(id)) {
        return Err(SimError::not_found(format!("contact {id} not found")));
    }
    Ok(Json(Data {
        data: org
            .contact_tags
            .get(&ContactId(id))
            .cloned()
            .unwrap_or_default(),
    }))
}

/// `POST /contacts/{id}/tags` with `[{name}]`.
pub async fn add_tags(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Id(id): Id<i64>,
    body: Bytes,
) -> SimResult<Json<Data<Vec<ContactTag>>>> {
    caller.require("contact_write")?;
    let tags: Vec<ContactTag> = parse_json(&body)?;
    let mut world = st.world.lock();
    let org = world.org_mut(caller.org)?;
    if !org.contacts.contains_key(&ContactId(id)) {
        return Err(SimError::not_found(format!("contact {id} not found")));
    }
    let mut list = org
        .contact_tags
        .get(&ContactId(id))
        .cloned()
        .unwrap_or_default();
    for t in tags {
        if !list.iter().any(|x| x.name == t.name) {
            list.push(t);
        }
    }
    org.set_tags(ContactId(id), list.clone());
    Ok(Json(Data { data: list }))
}

/// `DELETE /contacts/{id}/tags/{name}`.
pub async fn delete_tag(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Id((id, name)): Id<(i64, String)>,
) -> SimResult<Json<OkResult>> {
    caller.require("contact_write")?;
    let mut world = st.world.lock();
    let org = world.org_mut(caller.org)?;
    let mut list = org
        .contact_tags
        .get(&ContactId(id))
        .cloned()
        .unwrap_or_default();
    let before = list.len();
    list.retain(|t| t.name != name);
    if list.len() == before {
        return Err(SimError::not_found(format!(
            "contact {id} has no tag {name:?}"
        )));
    }
    org.set_tags(ContactId(id), list);
    Ok(Json(OkResult::ok()))
}

/// `POST /contacts/{id}/tags/delete/_bulk` with a JSON list of tag names (Drift's Python SDK
/// calls it): removes each; names the contact does not have are ignored.
pub async fn delete_tags_bulk(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Id(id): Id<i64>,
    body: Bytes,
) -> SimResult<Json<OkResult>> {
    caller.require("contact_write")?;
    let names: Vec<String> = parse_json(&body)?;
    let mut world = st.world.lock();
    let org = world.org_mut(caller.org)?;
    if !org.contacts.contains_key(&ContactId(id)) {
        return Err(SimError::not_found(format!("contact {id} not found")));
    }
    if let Some(mut list) = org.contact_tags.get(&ContactId(id)).cloned() {
        list.retain(|t| !names.contains(&t.name));
        org.set_tags(ContactId(id), list);
    }
    Ok(Json(OkResult::ok()))
}

/// `POST /emails/unsubscribe` with a JSON list of emails (Drift's Python SDK calls it): every
/// contact with one of them (any case) gets the attribute `unsubscribed: true`; emails no
/// contact has are ignored. Answers how many contacts changed, in a house shape.
pub async fn unsubscribe_emails(
    State(st): St,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> SimResult<Json<serde_json::Value>> {
    caller.require("contact_write")?;
    let emails: Vec<String> = parse_json(&body)?;
    let emails: Vec<String> = emails.iter().map(|e| e.trim().to_lowercase()).collect();
    let mut world = st.world.lock();
    let org = world.org_mut(caller.org)?;
    let mut changed = 0;
    for c in org.contacts.values_mut() {
        if c.attributes
            .email()
            .is_some_and(|e| emails.contains(&e.to_lowercase()))
        {
            c.attributes
                .0
                .insert("unsubscribed".into(), serde_json::Value::Bool(true));
            changed += 1;
        }
    }
    Ok(Json(
        serde_json::json!({"data": {"contactsUpdated": changed}}),
    ))
}
