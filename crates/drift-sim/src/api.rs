//! The Drift REST endpoints of drift-api.md §5, answered from the world with Drift's shapes.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use drift_types::{
    AccountWrite, AccountsPage, ContactId, ContactTag, ContactWrite, Conversation, ConversationId,
    ConversationListPage, ConversationStatus, Data, EpochMillis, GdprMessage, GdprRequest,
    LegacyConversationPage, Links, MessagesData, MessagesPage, NewConversation, NewMessage,
    OkResult, Pagination, ReportRequest, ReportResponse, ReportRow, TimelineEvent, UserId,
    UserUpdate,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::middleware::Caller;
use crate::state::{SimError, SimResult, SimState};
use crate::text;

type St = State<Arc<SimState>>;

/// Parses a JSON body into `T`, answering `validation_error` with serde's reason.
pub fn parse_json<T: DeserializeOwned>(body: &Bytes) -> SimResult<T> {
    serde_json::from_slice(body).map_err(|e| SimError::invalid(format!("invalid JSON body: {e}")))
}

/// All query pairs, keeping repeated keys.
pub fn query_pairs(q: &Option<String>) -> Vec<(String, String)> {
    q.as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn int_param<T: std::str::FromStr>(pairs: &[(String, String)], key: &str) -> SimResult<Option<T>> {
    match param(pairs, key) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| SimError::invalid(format!("query parameter {key}={v:?} is not a number"))),
    }
}

fn now() -> EpochMillis {
    EpochMillis::now()
}

// ---- conversations -------------------------------------------------------------------

/// Cursor of both list generations: the last `(updatedAt, id)` seen plus the walk's settings.
struct ListCursor {
    updated: i64,
    id: i64,
    limit: usize,
    statuses: Vec<u8>,
}

impl ListCursor {
    fn encode(&self) -> String {
        let s: Vec<String> = self.statuses.iter().map(u8::to_string).collect();
        let raw = format!(
            "{}.{}.{}.{}",
            self.updated,
            self.id,
            self.limit,
            s.join("-")
        );
        raw.bytes().map(|b| format!("{b:02x}")).collect()
    }

    fn decode(token: &str) -> SimResult<Self> {
        let bad = || SimError::invalid(format!("page token {token:?} is not valid"));
        if !token.len().is_multiple_of(2) {
            return Err(bad());
        }
        let bytes: Option<Vec<u8>> = (0..token.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
            .collect();
        let raw = String::from_utf8(bytes.ok_or_else(bad)?).map_err(|_| bad())?;
        let parts: Vec<&str> = raw.split('.').collect();
        let [u, i, l, s] = parts.as_slice() else {
            return Err(bad());
        };
        Ok(Self {
            updated: u.parse().map_err(|_| bad())?,
            id: i.parse().map_err(|_| bad())?,
            limit: l.parse().map_err(|_| bad())?,
            statuses: s
                .split('-')
                .filter(|x| !x.is_empty())
                .map(|x| x.parse().map_err(|_| bad()))
                .collect::<SimResult<_>>()?,
        })
    }
}

fn summary(c: &Conversation) -> Conversation {
    Conversation {
        participants: vec![],
        org_id: None,
        related_playbook_id: None,
        conversation_tags: vec![],
        ..c.clone()
    }
}

/// `(updatedAt, id)`: the position of a conversation in the newest-first order.
type SortKey = (i64, i64);

/// One page, newest-updated first, strictly after `after` when given.
fn list_page(
    st: &SimState,
    caller: &Caller,
    after: Option<(i64, i64)>,
    limit: usize,
    statuses: &[u8],
) -> SimResult<(Vec<Conversation>, Option<SortKey>)> {
    let world = st.world.lock();
    let org = world.org(caller.org)?;
    let wanted: Vec<ConversationStatus> = statuses
        .iter()
        .filter_map(|s| ConversationStatus::from_status_id(*s))
        .collect();
    let range = match after {
        Some(k) => org.by_updated.range(..k),
        None => org.by_updated.range(..),
    };
    let mut out = Vec::with_capacity(limit);
    let mut last = None;
    let mut more = false;
    for &(updated, id) in range.rev() {
        let Some(rec) = org.conversations.get(&ConversationId(id)) else {
            continue;
        };
        if !wanted.is_empty() && !wanted.contains(&rec.conversation.status) {
            continue;
        }
        if out.len() == limit {
            more = true;
            break;
        }
        out.push(summary(&rec.conversation));
        last = Some((updated, id));
    }
    Ok((out, if more { last } else { None }))
}

/// `GET /conversations/list`: `page_token` generation, or the legacy one when `next` is given.
pub async fn list_conversations(
    State(st): St,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> SimResult<Response> {
    caller.require("conversation_read")?;
    let pairs = query_pairs(&q);
    let mut statuses: Vec<u8> = pairs
        .iter()
        .filter(|(k, _)| k == "statusId")
        .map(|(_, v)| {
            v.parse()
                .map_err(|_| SimError::invalid(format!("statusId {v:?} is not 1, 2, 3 or 4")))
        })
        .collect::<SimResult<_>>()?;
    statuses.sort_unstable();
    statuses.dedup();
    if let Some(next) = param(&pairs, "next") {
        let limit = int_param::<usize>(&pairs, "limit")?
            .unwrap_or(25)
            .clamp(1, 50);
        let after = if next.is_empty() {
            None
        } else {
            let c = ListCursor::decode(next)?;
            Some((c.updated, c.id))
        };
        let (data, more) = list_page(&st, &caller, after, limit, &statuses)?;
        let pagination = more.map(|(updated, id)| Pagination {
            more: true,
            next: Some(
                ListCursor {
                    updated,
                    id,
                    limit,
                    statuses: statuses.clone(),
                }
                .encode(),
            ),
        });
        return Ok(Json(LegacyConversationPage { data, pagination }).into_response());
    }
    let (after, limit, statuses) = match param(&pairs, "page_token").filter(|t| !t.is_empty()) {
        Some(t) => {
            let c = ListCursor::decode(t)?;
            (Some((c.updated, c.id)), c.limit, c.statuses)
        }
        None => {
            let limit = int_param::<usize>(&pairs, "limit")?
                .unwrap_or(25)
                .clamp(1, 100);
            (None, limit, statuses)
        }
    };
    let (data, more) = list_page(&st, &caller, after, limit, &statuses)?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let base = format!("http://{host}/conversations/list");
    let this = match q.as_deref() {
        Some(q) if !q.is_empty() => format!("{base}?{q}"),
        _ => base.clone(),
    };
    let next = more.map(|(updated, id)| {
        let token = ListCursor {
            updated,
            id,
            limit,
            statuses,
        }
        .encode();
        format!("{base}?page_token={token}")
    });
    Ok(Json(ConversationListPage {
        data,
        links: Links {
            this: Some(this),
            next,
        },
    })
    .into_response())
}

/// `GET /conversations/{id}`.
pub async fn get_conversation(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> SimResult<Json<Data<Conversation>>> {
    caller.require("conversation_read")?;
    let world = st.world.lock();
    let rec = world.org(caller.org)?.conversation(ConversationId(id))?;
    Ok(Json(Data {
        data: rec.conversation.clone(),
    }))
}

/// Messages per page; Drift's page size is fixed at 50.
pub const MESSAGES_PAGE: usize = 50;

/// `GET /conversations/{id}/messages?next=`.
pub async fn list_messages(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    RawQuery(q): RawQuery,
) -> SimResult<Json<MessagesPage>> {
    caller.require("conversation_read")?;
    let pairs = query_pairs(&q);
    let start = int_param::<usize>(&pairs, "next")?.unwrap_or(0);
    let world = st.world.lock();
    let rec = world.org(caller.org)?.conversation(ConversationId(id))?;
    let end = (start + MESSAGES_PAGE).min(rec.messages.len());
    let messages = rec.messages.get(start..end).unwrap_or_default().to_vec();
    let pagination = (end < rec.messages.len()).then(|| Pagination {
        more: true,
        next: Some(end.to_string()),
    });
    Ok(Json(MessagesPage {
        data: MessagesData { messages },
        pagination,
    }))
}

/// `POST /conversations/{id}/messages`.
pub async fn post_message(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    body: Bytes,
) -> SimResult<Json<Data<MessagesData>>> {
    caller.require("conversation_write")?;
    let new: NewMessage = parse_json(&body)?;
    if new.body.as_deref().is_none_or(str::is_empty)
        && new.buttons.is_none()
        && new.edit_type.is_none()
    {
        return Err(SimError::invalid("a message needs a body or buttons"));
    }
    let app_id = st.config.app.app_id.clone();
    let m = st
        .world
        .lock()
        .post_message(caller.org, ConversationId(id), &new, &app_id, now())?;
    Ok(Json(Data {
        data: MessagesData { messages: vec![m] },
    }))
}

/// `GET /conversations/{id}/transcript`: plain text.
pub async fn transcript(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> SimResult<Response> {
    caller.require("conversation_read")?;
    let world = st.world.lock();
    let org = world.org(caller.org)?;
    let rec = org.conversation(ConversationId(id))?;
    let contact = rec
        .conversation
        .contact_id
        .and_then(|c| org.contacts.get(&c));
    let body = text::transcript(&rec.messages, contact, |u| org.users.get(&UserId(u)));
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response())
}

/// `POST /conversations/new`: answers the conversation bare, not wrapped in `data`.
pub async fn new_conversation(
    State(st): St,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> SimResult<Json<Conversation>> {
    caller.require("conversation_write")?;
    let new: NewConversation = parse_json(&body)?;
    let c = st.world.lock().create_conversation(
        caller.org,
        &new.email,
        &new.message.body,
        new.message.attributes,
        now(),
    )?;
    Ok(Json(c))
}

/// `POST /reports/conversations`.
pub async fn report(
    State(st): St,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> SimResult<Json<ReportResponse>> {
    caller.require("conversation_read")?;
    let req: ReportRequest = parse_json(&body)?;
    let world = st.world.lock();
    let org = world.org(caller.org)?;
    let mut rows = Vec::new();
    for &(_, id) in org.by_updated.iter().rev() {
        let Some(rec) = org.conversations.get(&ConversationId(id)) else {
            continue;
        };
        let props = crate::report::properties(rec, org.bot_id);
        if !req
            .filters
            .iter()
            .map(|f| crate::report::matches(f, &props))
            .collect::<SimResult<Vec<bool>>>()?
            .into_iter()
            .all(|b| b)
        {
            continue;
        }
        let metrics = req
            .metrics
            .iter()
            .map(|m| {
                props
                    .get(m)
                    .filter(|v| v.is_number())
                    .cloned()
                    .unwrap_or_else(|| json!("NaN"))
            })
            .collect();
        rows.push(ReportRow {
            conversation_id: rec.conversation.id,
            metrics,
        });
    }
    Ok(Json(ReportResponse {
        count: rows.len() as u64,
        data: rows,
    }))
}

// ---- contacts ------------------------------------------------------------------------

/// `GET /contacts/{id}`.
pub async fn get_contact(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
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
    Path(id): Path<i64>,
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
    Path(id): Path<i64>,
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
    Path(id): Path<i64>,
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
    Path(id): Path<i64>,
    body: Bytes,
) -> SimResult<Json<Data<Vec<ContactTag>>>> {
    caller.require("contact_write")?;
    let tags: Vec<ContactTag> = parse_json(&body)?;
    let mut world = st.world.lock();
    let org = world.org_mut(caller.org)?;
    if !org.contacts.contains_key(&ContactId(id)) {
        return Err(SimError::not_found(format!("contact {id} not found")));
    }
    let list = org.contact_tags.entry(ContactId(id)).or_default();
    for t in tags {
        if !list.iter().any(|x| x.name == t.name) {
            list.push(t);
        }
    }
    Ok(Json(Data { data: list.clone() }))
}

/// `DELETE /contacts/{id}/tags/{name}`.
pub async fn delete_tag(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Path((id, name)): Path<(i64, String)>,
) -> SimResult<Json<OkResult>> {
    caller.require("contact_write")?;
    let mut world = st.world.lock();
    let org = world.org_mut(caller.org)?;
    let list = org.contact_tags.entry(ContactId(id)).or_default();
    let before = list.len();
    list.retain(|t| t.name != name);
    if list.len() == before {
        return Err(SimError::not_found(format!(
            "contact {id} has no tag {name:?}"
        )));
    }
    Ok(Json(OkResult::ok()))
}

// ---- users ---------------------------------------------------------------------------

/// `GET /users/list`.
pub async fn list_users(
    State(st): St,
    Extension(caller): Extension<Caller>,
) -> SimResult<Json<Data<Vec<drift_types::User>>>> {
    caller.require("user_read")?;
    let world = st.world.lock();
    Ok(Json(Data {
        data: world.org(caller.org)?.users.values().cloned().collect(),
    }))
}

/// `GET /users/{id}`.
pub async fn get_user(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> SimResult<Json<Data<drift_types::User>>> {
    caller.require("user_read")?;
    let world = st.world.lock();
    let u = world
        .org(caller.org)?
        .users
        .get(&UserId(id))
        .ok_or_else(|| SimError::not_found(format!("user {id} not found")))?;
    Ok(Json(Data { data: u.clone() }))
}

/// Most ids `GET /users?userId=` takes at once.
pub const USERS_BATCH_MAX: usize = 20;

/// `GET /users?userId=1&userId=2` -> map keyed by id.
pub async fn users_batch(
    State(st): St,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> SimResult<Json<Value>> {
    caller.require("user_read")?;
    let pairs = query_pairs(&q);
    let ids: Vec<i64> = pairs
        .iter()
        .filter(|(k, _)| k == "userId")
        .map(|(_, v)| {
            v.parse()
                .map_err(|_| SimError::invalid(format!("userId {v:?} is not a number")))
        })
        .collect::<SimResult<_>>()?;
    if ids.is_empty() || ids.len() > USERS_BATCH_MAX {
        return Err(SimError::invalid(format!(
            "give 1 to {USERS_BATCH_MAX} userId parameters, got {}",
            ids.len()
        )));
    }
    let world = st.world.lock();
    let org = world.org(caller.org)?;
    let mut map = serde_json::Map::new();
    for id in ids {
        if let Some(u) = org.users.get(&UserId(id)) {
            map.insert(id.to_string(), serde_json::to_value(u).unwrap_or_default());
        }
    }
    Ok(Json(json!({ "data": map })))
}

/// `PATCH /users/update?userId=`.
pub async fn update_user(
    State(st): St,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> SimResult<Json<Data<drift_types::User>>> {
    caller.require("user_write")?;
    let pairs = query_pairs(&q);
    let id = int_param::<i64>(&pairs, "userId")?
        .ok_or_else(|| SimError::invalid("userId is required"))?;
    let up: UserUpdate = parse_json(&body)?;
    if let Some(a) = &up.availability
        && a != "AVAILABLE"
        && a != "OFFLINE"
    {
        return Err(SimError::invalid(format!(
            "availability {a:?} must be AVAILABLE or OFFLINE"
        )));
    }
    let mut world = st.world.lock();
    let u = world
        .org_mut(caller.org)?
        .users
        .get_mut(&UserId(id))
        .ok_or_else(|| SimError::not_found(format!("user {id} not found")))?;
    macro_rules! set {
        ($($f:ident),*) => { $(if up.$f.is_some() { u.$f = up.$f.clone(); })* };
    }
    set!(name, alias, email, phone, locale, avatar_url, availability);
    u.updated_at = Some(now());
    Ok(Json(Data { data: u.clone() }))
}

/// Most meetings one call returns.
pub const MEETINGS_MAX: usize = 1000;

/// `GET /users/meetings/org?min_start_time=&max_start_time=`.
pub async fn meetings(
    State(st): St,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> SimResult<Json<Data<Vec<drift_types::Meeting>>>> {
    caller.require("user_read")?;
    let pairs = query_pairs(&q);
    let (Some(min), Some(max)) = (
        int_param::<i64>(&pairs, "min_start_time")?,
        int_param::<i64>(&pairs, "max_start_time")?,
    ) else {
        return Err(SimError::invalid(
            "min_start_time and max_start_time are both required",
        ));
    };
    let world = st.world.lock();
    let mut v: Vec<_> = world
        .org(caller.org)?
        .meetings
        .iter()
        .filter(|m| {
            m.slot_start
                .is_some_and(|s| s.get() >= min && s.get() <= max)
        })
        .cloned()
        .collect();
    v.sort_by_key(|m| (m.slot_start, m.slug.clone()));
    v.truncate(MEETINGS_MAX);
    Ok(Json(Data { data: v }))
}

// ---- accounts ------------------------------------------------------------------------

/// `POST /accounts/create`.
pub async fn create_account(
    State(st): St,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> SimResult<Json<Data<drift_types::Account>>> {
    caller.require("account_write")?;
    let w: AccountWrite = parse_json(&body)?;
    let mut world = st.world.lock();
    let seq = world.fresh_id();
    let a = world.org_mut(caller.org)?.create_account(w, seq, now())?;
    Ok(Json(Data { data: a }))
}

/// `GET /accounts/{id}` (deleted accounts too, with `deleted: true`).
pub async fn get_account(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> SimResult<Json<Data<drift_types::Account>>> {
    caller.require("account_read")?;
    let world = st.world.lock();
    let a = world
        .org(caller.org)?
        .accounts
        .get(&id)
        .ok_or_else(|| SimError::not_found(format!("account {id} not found")))?;
    Ok(Json(Data { data: a.clone() }))
}

/// Largest `size` of `GET /accounts` (sources say 100 or 65; 100 is the house choice).
pub const ACCOUNTS_PAGE_MAX: usize = 100;

/// `GET /accounts?index=&size=`.
pub async fn list_accounts(
    State(st): St,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> SimResult<Json<Data<AccountsPage>>> {
    caller.require("account_read")?;
    let pairs = query_pairs(&q);
    let index = int_param::<usize>(&pairs, "index")?.unwrap_or(0);
    let size = int_param::<usize>(&pairs, "size")?
        .unwrap_or(10)
        .clamp(1, ACCOUNTS_PAGE_MAX);
    let world = st.world.lock();
    let org = world.org(caller.org)?;
    let accounts: Vec<_> = org
        .accounts
        .values()
        .skip(index)
        .take(size)
        .cloned()
        .collect();
    let total = org.accounts.len();
    let next =
        (index + size < total).then(|| format!("/accounts?index={}&size={size}", index + size));
    Ok(Json(Data {
        data: AccountsPage {
            accounts,
            next,
            total: Some(total as u64),
        },
    }))
}

/// `PATCH /accounts/update`.
pub async fn update_account(
    State(st): St,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> SimResult<Json<Data<drift_types::Account>>> {
    caller.require("account_write")?;
    let w: AccountWrite = parse_json(&body)?;
    let a = st
        .world
        .lock()
        .org_mut(caller.org)?
        .update_account(w, now())?;
    Ok(Json(Data { data: a }))
}

/// `DELETE /accounts/{id}`: soft delete.
pub async fn delete_account(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> SimResult<Json<OkResult>> {
    caller.require("account_write")?;
    let mut world = st.world.lock();
    let a = world
        .org_mut(caller.org)?
        .accounts
        .get_mut(&id)
        .ok_or_else(|| SimError::not_found(format!("account {id} not found")))?;
    a.deleted = true;
    a.update_date_time = Some(now());
    Ok(Json(OkResult::ok()))
}

// ---- playbooks, GDPR, app --------------------------------------------------------------

/// `GET /playbooks/list`: a bare array.
pub async fn playbooks(
    State(st): St,
    Extension(caller): Extension<Caller>,
) -> SimResult<Json<Vec<drift_types::Playbook>>> {
    caller.require("playbook_read")?;
    let world = st.world.lock();
    Ok(Json(world.org(caller.org)?.playbooks.clone()))
}

/// `GET /playbooks/clp`.
pub async fn landing_pages(
    State(st): St,
    Extension(caller): Extension<Caller>,
) -> SimResult<Json<Data<Vec<drift_types::LandingPage>>>> {
    caller.require("playbook_read")?;
    let world = st.world.lock();
    Ok(Json(Data {
        data: world.org(caller.org)?.landing_pages.clone(),
    }))
}

/// `POST /gdpr/retrieve`: everything held about an email.
pub async fn gdpr_retrieve(
    State(st): St,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> SimResult<Json<Value>> {
    caller.require("gdpr_read")?;
    let req: GdprRequest = parse_json(&body)?;
    let world = st.world.lock();
    let org = world.org(caller.org)?;
    let contacts: Vec<_> = org
        .contacts_by_email(&req.email)
        .into_iter()
        .cloned()
        .collect();
    let ids: Vec<ContactId> = contacts.iter().map(|c| c.id).collect();
    let conversations: Vec<_> = org
        .conversations
        .values()
        .filter(|r| r.conversation.contact_id.is_some_and(|c| ids.contains(&c)))
        .map(|r| json!({"conversation": r.conversation, "messages": r.messages}))
        .collect();
    Ok(Json(
        json!({"data": {"email": req.email, "contacts": contacts, "conversations": conversations}}),
    ))
}

/// `POST /gdpr/delete`: erases the email's contacts and conversations.
pub async fn gdpr_delete(
    State(st): St,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> SimResult<Json<Data<GdprMessage>>> {
    caller.require("gdpr_write")?;
    let req: GdprRequest = parse_json(&body)?;
    if !req.email.contains('@') {
        return Err(SimError::invalid(format!(
            "{:?} is not an email",
            req.email
        )));
    }
    st.world.lock().org_mut(caller.org)?.erase_email(&req.email);
    Ok(Json(Data {
        data: GdprMessage {
            message: "Your delete is processing".into(),
        },
    }))
}

/// `POST /app/uninstall?clientId=&clientSecret=`: revokes the org's tokens for the app.
pub async fn uninstall(
    State(st): St,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> SimResult<Json<OkResult>> {
    let pairs = query_pairs(&q);
    let app = &st.config.app;
    if param(&pairs, "clientId") != Some(app.client_id.as_str())
        || param(&pairs, "clientSecret") != Some(app.client_secret.expose())
    {
        return Err(SimError::unauthenticated(
            "clientId/clientSecret do not match the app",
        ));
    }
    st.auth.lock().revoke_org(caller.org, &app.client_id);
    Ok(Json(OkResult::ok()))
}

/// 404 for anything else, in Drift's error shape.
pub async fn fallback() -> SimError {
    SimError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}
