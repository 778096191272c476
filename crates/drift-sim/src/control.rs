//! The simulator's control API under `/sim/`: request counters, fault rules, rate limit,
//! webhook target and emission (single events, bursts, live activity), dataset mutations and
//! token expiry. It is unauthenticated: the simulator is a local test tool.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use drift_types::{
    Author, AuthorType, ConversationId, ConversationStatus, EpochMillis, Message, MessageId,
    MessageType, OrgId, WebhookEvent,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::parse_json;
use crate::faults::FaultRule;
use crate::ratelimit::RateLimitConfig;
use crate::state::{SimError, SimResult, SimState};
use crate::webhooks::event_for;

type St = State<Arc<SimState>>;

/// `GET /sim/info`.
pub async fn info(State(st): St) -> Json<Value> {
    let (conversations, messages) = st.world.lock().counts();
    let orgs: Vec<Value> = st
        .private_tokens
        .iter()
        .map(|(o, t)| json!({"orgId": o, "token": t}))
        .collect();
    let app = &st.config.app;
    let datasets: Vec<Value> = st.world.lock().orgs.values().map(dataset).collect();
    Json(json!({
        "orgs": orgs,
        "datasets": datasets,
        "conversations": conversations,
        "messages": messages,
        "clientId": app.client_id,
        "seed": st.config.data.seed,
    }))
}

/// What one org holds, in the numbers that size an export of it: enough to compute the
/// fewest calls a complete export needs.
fn dataset(o: &crate::world::Org) -> Value {
    let pages: usize = o
        .conversations
        .values()
        .map(|r| r.messages.len().div_ceil(crate::api::MESSAGES_PAGE).max(1))
        .sum();
    let contacts: std::collections::BTreeSet<_> = o
        .conversations
        .values()
        .filter_map(|r| r.conversation.contact_id)
        .filter(|c| o.contacts.contains_key(c))
        .collect();
    let slots: Vec<i64> = o
        .meetings
        .iter()
        .filter_map(|m| m.slot_start.map(|s| s.get()))
        .collect();
    json!({
        "orgId": o.id,
        "conversations": o.conversations.len(),
        "messages": o.conversations.values().map(|r| r.messages.len()).sum::<usize>(),
        "messagePages": pages,
        "contactsReferenced": contacts.len(),
        "accounts": o.accounts.len(),
        "users": o.users.len(),
        "playbooks": o.playbooks.len(),
        "meetings": o.meetings.len(),
        "meetingsFirstSlot": slots.iter().min(),
        "meetingsLastSlot": slots.iter().max(),
    })
}

/// `GET /sim/requests`.
pub async fn requests(State(st): St) -> Json<Value> {
    let log = st.log.lock();
    Json(json!({"total": log.total, "counts": log.counts, "recent": log.recent}))
}

/// `DELETE /sim/requests`.
pub async fn clear_requests(State(st): St) -> Json<Value> {
    *st.log.lock() = Default::default();
    Json(json!({"ok": true}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsBody {
    rules: Vec<FaultRule>,
}

/// `PUT /sim/faults` with `{rules: [...]}`; an empty list clears them.
pub async fn set_faults(State(st): St, body: Bytes) -> SimResult<Json<Value>> {
    let b: FaultsBody = parse_json(&body)?;
    let n = b.rules.len();
    st.faults.lock().set(b.rules);
    Ok(Json(json!({"rules": n})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateBody {
    per_minute: u32,
    #[serde(default)]
    burst: Option<u32>,
}

/// `PUT /sim/rate-limit` with `{per_minute, burst?}`; 0 turns limiting off.
pub async fn set_rate_limit(State(st): St, body: Bytes) -> SimResult<Json<Value>> {
    let b: RateBody = parse_json(&body)?;
    st.limiter.lock().set_config(RateLimitConfig {
        per_minute: b.per_minute,
        burst: b.burst,
    });
    Ok(Json(json!({"per_minute": b.per_minute, "burst": b.burst})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetBody {
    url: Option<String>,
    verification_token: Option<String>,
    max_attempts: Option<u32>,
    backoff_ms: Option<u64>,
    concurrency: Option<usize>,
}

/// `PUT /sim/webhooks` with `{url, verification_token?, max_attempts?, backoff_ms?, concurrency?}`.
pub async fn set_webhook_target(State(st): St, body: Bytes) -> SimResult<Json<Value>> {
    let b: TargetBody = parse_json(&body)?;
    if let Some(u) = &b.url {
        url::Url::parse(u).map_err(|e| SimError::invalid(format!("url {u:?}: {e}")))?;
    }
    st.webhooks.configure(|c| {
        c.url = b.url.clone();
        if let Some(t) = b.verification_token {
            c.verification_token = t.into();
        }
        if let Some(n) = b.max_attempts {
            c.max_attempts = n;
        }
        if let Some(ms) = b.backoff_ms {
            c.backoff = Duration::from_millis(ms);
        }
        if let Some(n) = b.concurrency {
            c.concurrency = n;
        }
    });
    Ok(Json(json!({"url": b.url})))
}

/// `GET /sim/webhooks/stats`.
pub async fn webhook_stats(State(st): St) -> Json<Value> {
    Json(json!(st.webhooks.stats()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmitEvent {
    #[serde(rename = "type")]
    event_type: String,
    /// Raw `data`; generated from the dataset when absent.
    data: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmitBody {
    #[serde(default)]
    events: Vec<EmitEvent>,
    /// Also generate this many random events (of `types`, or every type but
    /// `app_disconnected`).
    #[serde(default)]
    count: usize,
    #[serde(default)]
    types: Vec<String>,
    org_id: Option<i64>,
    #[serde(default)]
    duplicate_rate: f64,
    #[serde(default)]
    shuffle: bool,
}

/// `POST /sim/webhooks/emit`: given events and/or `count` generated ones.
pub async fn emit(State(st): St, body: Bytes) -> SimResult<Json<Value>> {
    let b: EmitBody = parse_json(&body)?;
    let org = b.org_id.map(OrgId).unwrap_or_else(|| st.default_org());
    let now = EpochMillis::now();
    let mut events = Vec::new();
    {
        let world = st.world.lock();
        let o = world.org(org)?;
        let mut rng = st.rng.lock();
        for e in b.events {
            let ev = match e.data {
                Some(data) => WebhookEvent::Unknown {
                    event_type: e.event_type,
                    data,
                },
                None => event_for(&e.event_type, o, &mut rng, now).ok_or_else(|| {
                    SimError::invalid(format!("cannot generate a {:?} event", e.event_type))
                })?,
            };
            events.push(ev);
        }
        // Random traffic covers every type but `app_disconnected`: that one ends the install
        // (Drift sends nothing after it), so it is sent only when asked for by name.
        let types: Vec<&str> = if b.types.is_empty() {
            drift_types::webhook::EVENT_TYPES
                .iter()
                .copied()
                .filter(|t| *t != "app_disconnected")
                .collect()
        } else {
            b.types.iter().map(String::as_str).collect()
        };
        let mut tries = 0;
        while events.len() < b.count && tries < b.count * 4 + 10 {
            tries += 1;
            let t = *rng.pick(&types);
            if let Some(ev) = event_for(t, o, &mut rng, now) {
                events.push(ev);
            }
        }
    }
    crate::webhooks::apply_meeting_updates(st.world.lock().org_mut(org)?, &events);
    let queued = {
        let mut rng = st.rng.lock();
        st.webhooks
            .emit(org, &events, b.duplicate_rate, b.shuffle, &mut rng)
    };
    if queued == 0 && !events.is_empty() {
        return Err(SimError::invalid(
            "no webhook target configured: PUT /sim/webhooks first",
        ));
    }
    Ok(Json(json!({"events": events.len(), "queued": queued})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MutateBody {
    conversations: usize,
    org_id: Option<i64>,
}

/// `POST /sim/mutate`: adds a contact message to N distinct conversations (bumping their
/// `updatedAt`) and answers their ids.
pub async fn mutate(State(st): St, body: Bytes) -> SimResult<Json<Value>> {
    let b: MutateBody = parse_json(&body)?;
    let org = b.org_id.map(OrgId).unwrap_or_else(|| st.default_org());
    let changed = mutate_conversations(&st, org, b.conversations)?;
    Ok(Json(json!({"changed": changed})))
}

/// Changes `n` distinct random conversations; returns their ids.
pub fn mutate_conversations(st: &SimState, org: OrgId, n: usize) -> SimResult<Vec<ConversationId>> {
    let mut world = st.world.lock();
    let mut rng = st.rng.lock();
    let ids: Vec<ConversationId> = {
        let o = world.org(org)?;
        let mut all: Vec<ConversationId> = o.conversations.keys().copied().collect();
        all.sort();
        rng.shuffle(&mut all);
        all.truncate(n);
        all
    };
    let now = EpochMillis::now();
    for id in &ids {
        let msg_id = MessageId(world.fresh_id());
        let o = world.org_mut(org)?;
        let contact = o.conversations[id]
            .conversation
            .contact_id
            .unwrap_or_default();
        o.append_message(
            *id,
            Message {
                id: msg_id,
                org_id: Some(org),
                conversation_id: *id,
                created_at: now,
                body: Some(rng.pick(crate::text::CONTACT_LINES).to_string()),
                author: Author {
                    kind: AuthorType::Contact,
                    id: contact.get(),
                    bot: false,
                },
                kind: MessageType::Chat,
                buttons: None,
                context: None,
                attributes: None,
                edited_message_id: None,
                edit_type: None,
                attachments: None,
            },
        )?;
    }
    Ok(ids)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LiveBody {
    events_per_sec: f64,
    seconds: f64,
    org_id: Option<i64>,
}

/// `POST /sim/live`: generates activity (new messages, closes with `conversation_push`, new
/// conversations) at a rate for a while, emitting the matching webhooks.
pub async fn live(State(st): St, body: Bytes) -> SimResult<Json<Value>> {
    let b: LiveBody = parse_json(&body)?;
    if !(b.events_per_sec > 0.0
        && b.events_per_sec <= 10_000.0
        && b.seconds > 0.0
        && b.seconds <= 86_400.0)
    {
        return Err(SimError::invalid(
            "events_per_sec must be in (0, 10000] and seconds in (0, 86400]",
        ));
    }
    let org = b.org_id.map(OrgId).unwrap_or_else(|| st.default_org());
    let total = (b.events_per_sec * b.seconds).round() as u64;
    let period = Duration::from_secs_f64(1.0 / b.events_per_sec);
    let st2 = st.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        for _ in 0..total {
            tick.tick().await;
            if let Err(e) = live_step(&st2, org) {
                tracing::warn!(error = %e.message, "live step failed");
            }
        }
    });
    Ok(Json(json!({"events": total})))
}

fn live_step(st: &SimState, org: OrgId) -> SimResult<()> {
    let roll = st.rng.lock().below(100);
    let now = EpochMillis::now();
    let event = if roll < 60 {
        let id = mutate_conversations(st, org, 1)?;
        let world = st.world.lock();
        let rec = id
            .first()
            .and_then(|i| world.org(org).ok()?.conversations.get(i));
        rec.and_then(|r| r.messages.last().cloned())
            .map(WebhookEvent::NewMessage)
    } else {
        let mut world = st.world.lock();
        let o = world.org_mut(org)?;
        let open: Vec<ConversationId> = o
            .by_updated
            .iter()
            .rev()
            .take(200)
            .map(|(_, id)| ConversationId(*id))
            .filter(|id| {
                o.conversations
                    .get(id)
                    .is_some_and(|r| r.conversation.status == ConversationStatus::Open)
            })
            .collect();
        let Some(&id) = open.first() else {
            return Ok(());
        };
        o.set_status(id, ConversationStatus::Closed, now)?;
        Some(WebhookEvent::ConversationPush(
            drift_types::webhook::ConversationPush {
                source: Some("conversation_closed".into()),
                data: drift_types::webhook::PushDetails {
                    conversation_id: id,
                    user_id: None,
                    pushed_at: Some(now),
                },
            },
        ))
    };
    if let Some(ev) = event {
        let mut rng = st.rng.lock();
        st.webhooks.emit(org, &[ev], 0.0, false, &mut rng);
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpireBody {
    access_token: String,
}

/// `POST /sim/tokens/expire`: makes an access token expire now.
pub async fn expire_token(State(st): St, body: Bytes) -> SimResult<Json<Value>> {
    let b: ExpireBody = parse_json(&body)?;
    if !st
        .auth
        .lock()
        .expire(&b.access_token, std::time::Instant::now())
    {
        return Err(SimError::not_found("no such access token"));
    }
    Ok(Json(json!({"expired": true})))
}
