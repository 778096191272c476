//! The demo's widget visit (docs/WIDGET.md): the simulator's site is set up for the demo's
//! `serve`, and one visit is played without a browser, posting the widget events a page would
//! (`demo --keep` prints the page for a real browser).

use anyhow::{Context, Result, bail};
use drift_types::Secret;
use serde_json::{Value, json};

/// The demo's site key.
pub const SITE: &str = "demo";

/// The query string of the demo's landing page.
pub const CAMPAIGN: &str = "utm_source=demo&utm_medium=cpc&utm_campaign=launch";

/// Points the simulator's site at `serve` with the site's secret.
pub async fn set_up(http: &reqwest::Client, sim: &str, serve: &str, secret: &Secret) -> Result<()> {
    let r = http
        .put(format!("{sim}/sim/site"))
        .json(&json!({"driftbridge_url": serve, "site": SITE, "secret": secret.expose()}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!(
            "the simulator refused the site: {}",
            r.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// One visit: a chat in the simulated Drift, the widget's events to `serve` as the page's
/// script sends them, and the close that sends `conversation_push`. Answers the conversation
/// and the visitor's email.
pub async fn visit(
    http: &reqwest::Client,
    sim: &str,
    serve: &str,
    secret: &Secret,
) -> Result<(i64, String)> {
    let email = "widget.visitor@example.org".to_owned();
    let c: Value = http
        .post(format!("{sim}/sim/site/visit"))
        .json(&json!({"email": email}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = c["conversationId"]
        .as_i64()
        .context("the simulator's visit has no conversation")?;
    let now = drift_types::now_ms();
    let base = json!({"conversationId": id, "playbookId": c["playbookId"]});
    let with = |extra: Value| {
        let mut v = base.clone();
        if let (Some(v), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            v.extend(e.clone());
        }
        v
    };
    // What the page's fake widget emits (drift-api.md §12), the email already withheld.
    let events = [
        (
            "ready",
            json!({"chatOpen": false, "widgetVisible": true, "isOnline": true}),
        ),
        ("chatOpen", json!({})),
        (
            "startConversation",
            json!({"conversationId": id, "inboxId": c["inboxId"]}),
        ),
        (
            "conversation:playbookFired",
            with(json!({"messageId": c["botMessageId"], "authorId": c["botId"]})),
        ),
        (
            "conversation:firstInteraction",
            with(json!({"messageId": c["contactMessageId"]})),
        ),
        ("message:sent", with(json!({"inboxId": c["inboxId"]}))),
        (
            "message",
            with(json!({"inboxId": c["inboxId"], "teamMember": c["agent"]})),
        ),
        ("emailCapture", json!({"data": base})),
        (
            "scheduling:requestMeeting",
            json!({"teamMember": c["agent"]}),
        ),
        (
            "scheduling:meetingBooked",
            with(json!({"teamMember": c["agent"], "meeting": c["meeting"]})),
        ),
        ("gdprClicked", json!({"accepted": true})),
        ("chatClose", json!({})),
    ];
    let landing = format!("{sim}/sim/site?{CAMPAIGN}");
    let touch = json!({"utm_source": "demo", "utm_medium": "cpc", "utm_campaign": "launch",
        "landing_page": landing});
    let events: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(i, (t, data))| {
            let conv = data
                .get("conversationId")
                .or_else(|| data.pointer("/data/conversationId"));
            json!({"id": format!("demo-{id}-{i}"), "type": t, "ts": now + i as i64 * 300,
                "conversationId": conv, "page": {"url": landing, "path": "/sim/site"},
                "touch": touch, "data": data})
        })
        .collect();
    let visitor = format!("demo-visitor-{id}");
    let token = bridge_core::widget::mint(secret, SITE, &visitor, now / 1000 + 600);
    let r = http
        .post(format!("{serve}/widget/events"))
        .header("origin", sim)
        .json(
            &json!({"site": SITE, "visitor": visitor, "session": format!("s{id}"),
            "token": token, "events": events}),
        )
        .send()
        .await?;
    if !r.status().is_success() {
        bail!(
            "serve refused the widget events: {}",
            r.text().await.unwrap_or_default()
        );
    }
    http.post(format!("{sim}/sim/site/visit/{id}/close"))
        .send()
        .await?
        .error_for_status()?;
    Ok((id, email))
}
