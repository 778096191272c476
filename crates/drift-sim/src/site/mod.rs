//! A customer's web page for the widget bridge (docs/WIDGET.md): `GET /sim/site` serves a page
//! with a fake Drift widget (`drift.on`, `drift.api`) and driftbridge's `/widget.js`, and
//! plays a scripted visit: the chat opens, a conversation starts (created here, in the
//! simulated Drift), messages go both ways, the visitor leaves an email and books a meeting,
//! the consent prompt is answered, and the conversation is closed, which sends its
//! `conversation_push` and `new_meeting` webhooks. The widget's payloads are drift-api.md §12.
//!
//! The simulator also plays the customer's backend: for a signed site it mints the visitor's
//! token with the site's secret (its own code, the recipe of docs/WIDGET.md).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use base64::Engine as _;
use drift_types::webhook::{ConversationPush, PushDetails};
use drift_types::{
    Author, AuthorType, ConversationId, ConversationStatus, EpochMillis, Meeting, Message,
    MessageId, MessageType, WebhookEvent,
};
use serde::Deserialize;
use serde_json::{Value, json};

pub mod setup;

pub use setup::SiteSetup;

use crate::api::parse_json;
use crate::state::{SimError, SimResult, SimState};

type St = State<Arc<SimState>>;

/// `PUT /sim/site`.
pub async fn configure(State(st): St, body: Bytes) -> SimResult<Json<Value>> {
    let s: SiteSetup = parse_json(&body)?;
    if !s.driftbridge_url.starts_with("http") || s.site.is_empty() {
        return Err(SimError::invalid(
            "driftbridge_url must be an http(s) URL and site non-empty",
        ));
    }
    *st.site.lock() = Some(s);
    Ok(Json(json!({"ok": true})))
}

/// The customer's backend minting a visitor token: HMAC-SHA256 over `v1.SITE.VISITOR.EXP`
/// with the site's secret, base64url without padding.
fn mint(secret: &str, site: &str, visitor: &str, exp: i64) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, format!("v1.{site}.{visitor}.{exp}").as_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref());
    format!("v1.{visitor}.{exp}.{sig}")
}

fn attr(s: &str) -> String {
    drift_types::html::escape(s)
}

/// `GET /sim/site?utm_source=...`: the page.
pub async fn page(
    State(st): St,
    Query(q): Query<std::collections::BTreeMap<String, String>>,
) -> SimResult<Html<String>> {
    let Some(s) = st.site.lock().clone() else {
        return Err(SimError::invalid(
            "the site is not set up: PUT /sim/site with driftbridge_url and site first",
        ));
    };
    let email = q
        .get("email")
        .cloned()
        .unwrap_or_else(|| format!("visitor{}@example.org", st.rng.lock().below(1_000_000)));
    let token = s.secret.as_deref().map(|secret| {
        let visitor = format!("v{}", st.rng.lock().below(1_000_000_000));
        let exp = EpochMillis::now().get() / 1000 + 3600;
        mint(secret, &s.site, &visitor, exp)
    });
    let token_attr = token
        .map(|t| format!(" data-token=\"{}\"", attr(&t)))
        .unwrap_or_default();
    let collect = if s.collect_contact {
        " data-collect-contact=\"true\""
    } else {
        ""
    };
    Ok(Html(format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Acme (simulated site)</title></head>
<body><h1>Acme</h1><p id="status">visiting</p>
<script>window.simVisit = {{ email: "{email}", step: {step} }};</script>
<script>{FAKE_WIDGET}</script>
<script async src="{base}/widget.js" data-site="{site}"{token_attr}{collect}></script>
</body></html>"#,
        email = attr(&email),
        step = s.step_ms,
        base = attr(s.driftbridge_url.trim_end_matches('/')),
        site = attr(&s.site),
    )))
}

/// The fake Drift widget and the scripted visit.
const FAKE_WIDGET: &str = r#"
(function () {
  var handlers = {};
  var api = { openChat: function () {}, hideChat: function () {}, toggleChat: function () {},
    startInteraction: function () {}, setUserAttributes: function () {} };
  window.drift = { api: api, on: function (name, fn) { (handlers[name] = handlers[name] || []).push(fn); } };
  function emit(name, a, b) { (handlers[name] || []).forEach(function (f) { f(a, b); }); }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  function post(path, body) {
    return fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}) }).then(function (r) { return r.json(); });
  }
  async function play() {
    var v = window.simVisit, step = v.step, status = document.getElementById("status");
    while (!handlers.ready) await sleep(50);
    emit("ready", api, { chatOpen: false, widgetVisible: true, isOnline: true,
      teamAvailability: {} });
    await sleep(step); emit("chatOpen");
    var c = await post("/sim/site/visit", { email: v.email });
    var base = { conversationId: c.conversationId, playbookId: c.playbookId };
    await sleep(step); emit("startConversation", { conversationId: c.conversationId, inboxId: c.inboxId });
    await sleep(step); emit("conversation:playbookFired", Object.assign({ messageId: c.botMessageId,
      createdAt: Date.now(), authorId: c.botId }, base));
    await sleep(step); emit("conversation:firstInteraction", Object.assign({ messageId: c.contactMessageId,
      createdAt: Date.now(), authorId: c.contactId }, base));
    await sleep(step); emit("message:sent", Object.assign({ inboxId: c.inboxId }, base));
    await sleep(step); emit("message", Object.assign({ inboxId: c.inboxId, teamMember: c.agent }, base));
    await sleep(step); emit("emailCapture", { data: Object.assign({ email: v.email }, base) });
    await sleep(step); emit("scheduling:requestMeeting", { teamMember: c.agent });
    await sleep(step); emit("scheduling:meetingBooked", Object.assign({ teamMember: c.agent,
      meeting: c.meeting }, base));
    await sleep(step); emit("gdprClicked", { accepted: true, endUser: c.contactId });
    await sleep(step); emit("chatClose");
    await post("/sim/site/visit/" + c.conversationId + "/close");
    status.textContent = "done";
    document.body.dataset.conversation = String(c.conversationId);
  }
  play().catch(function (e) { document.getElementById("status").textContent = "failed: " + e; });
})();
"#;

#[derive(Deserialize)]
struct VisitBody {
    email: String,
}

/// `POST /sim/site/visit`: the visitor starts a chat; Drift gets the conversation, the bot's
/// and an agent's replies and a booked meeting.
pub async fn visit(State(st): St, body: Bytes) -> SimResult<Json<Value>> {
    let b: VisitBody = parse_json(&body)?;
    let org = st.default_org();
    let now = EpochMillis::now();
    let mut world = st.world.lock();
    let c = world.create_conversation(org, &b.email, "Hi, I'd like a demo", None, now)?;
    let (bot_msg, agent_msg) = (MessageId(world.fresh_id()), MessageId(world.fresh_id()));
    let contact_msg = world.org(org)?.conversations[&c.id].messages[0].id;
    let o = world.org_mut(org)?;
    let bot = o.bot_id;
    let agent = o
        .users
        .values()
        .find(|u| !u.bot)
        .map(|u| (u.id, u.name.clone().unwrap_or_default()))
        .ok_or_else(|| SimError::invalid("the org has no agent"))?;
    let playbook = o.playbooks.first().map(|p| p.id.get());
    let say = |id, author: i64, bot: bool, body: &str, at: i64| Message {
        id,
        org_id: Some(org),
        conversation_id: c.id,
        created_at: EpochMillis(at),
        body: Some(body.to_owned()),
        author: Author {
            kind: AuthorType::User,
            id: author,
            bot,
        },
        kind: MessageType::Chat,
        buttons: None,
        context: None,
        attributes: None,
        edited_message_id: None,
        edit_type: None,
        attachments: None,
    };
    o.append_message(
        c.id,
        say(
            bot_msg,
            bot.get(),
            true,
            "Happy to help! Connecting you.",
            now.get() + 1,
        ),
    )?;
    o.append_message(
        c.id,
        say(
            agent_msg,
            agent.0.get(),
            false,
            "Hi! Let's book a time.",
            now.get() + 2,
        ),
    )?;
    if let Some(rec) = o.conversations.get_mut(&c.id) {
        rec.conversation.related_playbook_id = playbook.map(drift_types::PlaybookId);
    }
    let start = now.get() + 2 * 86_400_000;
    let meeting = Meeting {
        agent_id: Some(agent.0),
        org_id: Some(org),
        status: Some("ACTIVE".into()),
        meeting_source: Some("CHAT".into()),
        scheduler_id: c.contact_id,
        event_id: Some(format!("sim-site-{}", c.id)),
        slug: Some(format!("site-{}", c.id)),
        slot_start: Some(EpochMillis(start)),
        slot_end: Some(EpochMillis(start + 1_800_000)),
        updated_at: Some(now),
        scheduled_at: Some(now),
        meeting_type: Some("Demo".into()),
        conversation_id: Some(c.id),
        end_user_time_zone: Some("Europe/Berlin".into()),
        meeting_notes: None,
        booked_by: c.contact_id.map(|x| x.get()),
    };
    o.meetings.push(meeting);
    Ok(Json(json!({
        "conversationId": c.id.get(),
        "inboxId": o.inbox_id,
        "playbookId": playbook,
        "contactId": c.contact_id.map(|x| x.get()),
        "contactMessageId": contact_msg.get(),
        "botMessageId": bot_msg.get(),
        "botId": bot.get(),
        "agent": {"id": agent.0.get(), "name": agent.1},
        "meeting": {"time": start, "duration": 30, "timeZone": "Europe/Berlin"},
    })))
}

/// `POST /sim/site/visit/{id}/close`: the agent closes the chat; Drift sends
/// `conversation_push` and the meeting's `new_meeting`.
pub async fn close(State(st): St, Path(id): Path<i64>) -> SimResult<Json<Value>> {
    let org = st.default_org();
    let now = EpochMillis::now();
    let id = ConversationId(id);
    let meeting = {
        let mut world = st.world.lock();
        let o = world.org_mut(org)?;
        o.set_status(id, ConversationStatus::Closed, now)?;
        o.meetings
            .iter()
            .find(|m| m.conversation_id == Some(id))
            .cloned()
    };
    let mut events = vec![WebhookEvent::ConversationPush(ConversationPush {
        source: Some("conversation_closed".into()),
        data: PushDetails {
            conversation_id: id,
            user_id: None,
            pushed_at: Some(now),
        },
    })];
    events.extend(meeting.map(WebhookEvent::NewMeeting));
    let envelopes = st.webhooks.envelopes(org, &events);
    let sent = st.webhooks.send(envelopes);
    Ok(Json(json!({"webhooks": sent})))
}
