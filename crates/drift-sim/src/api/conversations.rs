//! Conversations, messages, transcripts, reports.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use drift_types::{
    Conversation, ConversationId, ConversationListPage, ConversationStatus, Data,
    LegacyConversationPage, Links, MessagesData, MessagesPage, NewConversation, NewMessage,
    Pagination, ReportRequest, ReportResponse, ReportRow, UserId,
};
use serde_json::{Value, json};

use crate::middleware::Caller;
use crate::state::{SimError, SimResult, SimState};
use crate::text;

use super::request::{Id, St, int_param, now, param, parse_json, query_pairs};

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
        let page = LegacyConversationPage { data, pagination };
        return Ok(Json(without_participants(json!(page))).into_response());
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
    let page = ConversationListPage {
        data,
        links: Links {
            this: Some(this),
            next,
        },
    };
    Ok(Json(without_participants(json!(page))).into_response())
}

/// A list page as Drift sends it: its items have no `participants` field (only a
/// conversation's own `GET` has it), so a client that relied on it in a list would fail
/// against Drift and must fail here too.
fn without_participants(mut page: Value) -> Value {
    if let Some(items) = page.get_mut("data").and_then(Value::as_array_mut) {
        for item in items {
            if let Some(o) = item.as_object_mut() {
                o.remove("participants");
            }
        }
    }
    page
}

/// `GET /conversations/{id}`.
pub async fn get_conversation(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Id(id): Id<i64>,
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
    Id(id): Id<i64>,
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
    Id(id): Id<i64>,
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
    Id(id): Id<i64>,
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

/// `GET /attachments/{id}/data`: a message attachment's bytes, with its MIME type (the
/// scope a conversation's messages need).
pub async fn attachment_data(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Id(id): Id<i64>,
) -> SimResult<Response> {
    caller.require("conversation_read")?;
    let world = st.world.lock();
    let org = world.org(caller.org)?;
    let a = org
        .attachments
        .get(&id)
        .ok_or_else(|| SimError::not_found(format!("attachment {id} not found")))?;
    let mime = if a.mime_type.is_empty() {
        "application/octet-stream".to_owned()
    } else {
        a.mime_type.clone()
    };
    let bytes = crate::generate::attachment_bytes(id);
    Ok(([(header::CONTENT_TYPE, mime)], bytes).into_response())
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

/// The reporting API's cap (60 calls a minute per org).
fn report_cap(st: &SimState, caller: &Caller) -> SimResult<()> {
    let key = format!("reports:{}", caller.org);
    if let Some(d) = st
        .report_limiter
        .lock()
        .check(&key, std::time::Instant::now())
        && !d.allowed
    {
        return Err(SimError::rate_limited(
            d.retry_after.as_secs_f64().ceil().max(1.0) as u64,
            "the reporting API allows 60 calls a minute",
        ));
    }
    Ok(())
}

/// The reporting properties of every conversation the filters keep, newest updated first.
fn reported(
    st: &SimState,
    caller: &Caller,
    filters: &[drift_types::ReportFilter],
) -> SimResult<
    Vec<(
        ConversationId,
        std::collections::HashMap<String, serde_json::Value>,
    )>,
> {
    let world = st.world.lock();
    let org = world.org(caller.org)?;
    let mut out = Vec::new();
    for &(_, id) in org.by_updated.iter().rev() {
        let Some(rec) = org.conversations.get(&ConversationId(id)) else {
            continue;
        };
        let props = crate::report::properties(rec, org.bot_id);
        let mut keep = true;
        for f in filters {
            keep &= crate::report::matches(f, &props)?;
        }
        if keep {
            out.push((rec.conversation.id, props));
        }
    }
    Ok(out)
}

/// `POST /reports/conversations`.
pub async fn report(
    State(st): St,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> SimResult<Json<ReportResponse>> {
    caller.require("conversation_read")?;
    report_cap(&st, &caller)?;
    let req: ReportRequest = parse_json(&body)?;
    let rows: Vec<ReportRow> = reported(&st, &caller, &req.filters)?
        .into_iter()
        .map(|(id, props)| ReportRow {
            conversation_id: id,
            metrics: req
                .metrics
                .iter()
                .map(|m| {
                    props
                        .get(m)
                        .filter(|v| v.is_number())
                        .cloned()
                        .unwrap_or_else(|| json!("NaN"))
                })
                .collect(),
        })
        .collect();
    Ok(Json(ReportResponse {
        count: rows.len() as u64,
        data: rows,
    }))
}

/// `POST /reports/conversation-summary`: `{metrics: [{type, property}], filters}` ->
/// `{data: [{type, property, value}]}` (a house shape: Drift's is undocumented), where `type`
/// is `AVG`, `SUM`, `MIN`, `MAX` or `COUNT` over the conversations that have the property;
/// `value` is `"NaN"` when none has it.
pub async fn conversation_summary(
    State(st): St,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> SimResult<Json<serde_json::Value>> {
    #[derive(serde::Deserialize)]
    struct Metric {
        #[serde(rename = "type")]
        kind: String,
        property: String,
    }
    #[derive(serde::Deserialize)]
    struct Summary {
        metrics: Vec<Metric>,
        #[serde(default)]
        filters: Vec<drift_types::ReportFilter>,
    }
    caller.require("conversation_read")?;
    report_cap(&st, &caller)?;
    let req: Summary = parse_json(&body)?;
    let rows = reported(&st, &caller, &req.filters)?;
    let mut data = Vec::new();
    for m in &req.metrics {
        let vals: Vec<f64> = rows
            .iter()
            .filter_map(|(_, p)| p.get(&m.property)?.as_f64())
            .collect();
        let n = vals.len() as f64;
        let value = match m.kind.as_str() {
            "COUNT" => Some(n),
            _ if vals.is_empty() => None,
            "AVG" => Some(vals.iter().sum::<f64>() / n),
            "SUM" => Some(vals.iter().sum()),
            "MIN" => vals.iter().copied().reduce(f64::min),
            "MAX" => vals.iter().copied().reduce(f64::max),
            other => {
                return Err(SimError::invalid(format!(
                    "unsupported metric type {other:?}: AVG, SUM, MIN, MAX or COUNT"
                )));
            }
        };
        data.push(json!({"type": m.kind, "property": m.property,
            "value": value.map_or(json!("NaN"), |v| json!(v))}));
    }
    Ok(Json(json!({ "data": data })))
}

/// `GET /conversations/stats`: conversations by status, in a house shape (Drift's is
/// undocumented): `{"conversationCount": {"OPEN": n, "CLOSED": n, "PENDING": n, ...}}`.
pub async fn stats(State(st): St, Extension(caller): Extension<Caller>) -> SimResult<Json<Value>> {
    caller.require("conversation_read")?;
    let world = st.world.lock();
    let org = world.org(caller.org)?;
    let mut counts: std::collections::BTreeMap<String, u64> = ["OPEN", "CLOSED", "PENDING"]
        .into_iter()
        .map(|s| (s.to_owned(), 0))
        .collect();
    for rec in org.conversations.values() {
        *counts
            .entry(rec.conversation.status.as_str().to_uppercase())
            .or_default() += 1;
    }
    Ok(Json(json!({ "conversationCount": counts })))
}

/// `GET /conversations/{id}/json_transcript`: the transcript as data, in a house shape:
/// `{"data": [{"id", "createdAt", "authorType", "authorId", "authorName", "bot", "type",
/// "body"}]}`, oldest first, bodies as plain text.
pub async fn json_transcript(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Id(id): Id<i64>,
) -> SimResult<Json<Value>> {
    caller.require("conversation_read")?;
    let world = st.world.lock();
    let org = world.org(caller.org)?;
    let rec = org.conversation(ConversationId(id))?;
    let contact = rec
        .conversation
        .contact_id
        .and_then(|c| org.contacts.get(&c));
    let lines: Vec<Value> = rec
        .messages
        .iter()
        .map(|m| {
            // Named and cleaned as the plain-text transcript names and cleans them.
            let name = text::author_label(m, contact, |u| org.users.get(&UserId(u)));
            json!({
                "id": m.id, "createdAt": m.created_at, "authorType": m.author.kind,
                "authorId": m.author.id, "authorName": name, "bot": m.author.bot,
                "type": m.kind, "body": m.body.as_deref().map(text::strip_html),
            })
        })
        .collect();
    Ok(Json(json!({ "data": lines })))
}
