//! The simulator's webhook emitter and rate limiter, seen from outside over TCP.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use drift_sim::{DataConfig, SimConfig};
use drift_types::WebhookEnvelope;

type Seen = Arc<Mutex<Vec<(String, WebhookEnvelope)>>>;

/// A receiver that refuses the first `fail_first` deliveries with 500.
async fn receiver(fail_first: usize) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let calls = Arc::new(Mutex::new(0usize));
    let s2 = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: String| {
            let (seen, calls) = (s2.clone(), calls.clone());
            async move {
                let mut n = calls.lock().unwrap();
                *n += 1;
                if *n <= fail_first {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                let token = headers["x-verification-token"].to_str().unwrap().to_owned();
                seen.lock()
                    .unwrap()
                    .push((token, serde_json::from_str(&body).unwrap()));
                StatusCode::OK
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, seen)
}

#[tokio::test]
async fn emitted_events_arrive_with_the_token_in_header_and_body_and_refusals_are_retried() {
    let (url, seen) = receiver(3).await;
    let mut config = SimConfig {
        data: DataConfig {
            conversations: 50,
            ..DataConfig::default()
        },
        ..SimConfig::default()
    };
    config.webhooks.backoff = Duration::from_millis(10);
    let sim = drift_sim::spawn(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let base = sim.base_url();
    let r = http
        .put(format!("{base}/sim/webhooks"))
        .json(&serde_json::json!({"url": url, "verification_token": "vt-123"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let types: Vec<&str> = drift_types::webhook::EVENT_TYPES.to_vec();
    let r = http
        .post(format!("{base}/sim/webhooks/emit"))
        .json(&serde_json::json!({"count": 40, "types": types, "shuffle": true}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    assert!(sim.state.webhooks.drain(Duration::from_secs(10)).await);
    let stats = sim.state.webhooks.stats();
    assert_eq!((stats.queued, stats.delivered, stats.gave_up), (40, 40, 0));
    assert_eq!(stats.failed_attempts, 3);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 40);
    for (header, env) in seen.iter() {
        assert_eq!(header, "vt-123");
        assert_eq!(env.token.as_ref().map(|t| t.expose()), Some("vt-123"));
        assert!(env.event().is_ok(), "{} parses", env.event_type);
    }
}

#[tokio::test]
async fn bad_control_input_says_what_is_wrong() {
    let sim = drift_sim::spawn(SimConfig::default(), SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let r = http
        .put(format!("{}/sim/faults", sim.base_url()))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "validation_error");
    // Nothing configured, nothing delivered.
    let r = http
        .post(format!("{}/sim/webhooks/emit", sim.base_url()))
        .json(&serde_json::json!({"count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .get(format!("{}/conversations/list", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no bearer token");
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_headers_once_the_bucket_is_full() {
    let config = SimConfig {
        rate_limit: drift_sim::RateLimitConfig {
            per_minute: 60,
            burst: Some(3),
        },
        ..SimConfig::default()
    };
    let sim = drift_sim::spawn(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let mut statuses = vec![];
    let mut last = None;
    for _ in 0..4 {
        let r = http
            .get(format!("{}/users/list", sim.base_url()))
            .bearer_auth(sim.token())
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        last = Some(r);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    let r = last.unwrap();
    assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(sim.state.log.lock().count_status(429), 1);
}

#[tokio::test]
async fn the_reporting_api_allows_60_calls_a_minute_whatever_the_general_limit() {
    // The general limit is off; the reporting cap still holds.
    let sim = drift_sim::spawn(
        SimConfig::unlimited(3),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let report = || {
        http.post(format!("{}/reports/conversations", sim.base_url()))
            .bearer_auth(sim.token())
            .json(&serde_json::json!({"filters": [], "metrics": ["numAgentMessages"]}))
            .send()
    };
    for i in 0..60 {
        let r = report().await.unwrap();
        assert_eq!(r.status(), 200, "call {i}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["count"], 3);
    }
    let r = report().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    // Other endpoints are not affected.
    let r = http
        .get(format!("{}/users/list", sim.base_url()))
        .bearer_auth(sim.token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_conversation_summary_aggregates_what_the_per_conversation_report_lists() {
    let sim = drift_sim::spawn(
        SimConfig::unlimited(40),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{}{path}", sim.base_url()))
            .bearer_auth(sim.token())
            .json(&body)
            .send()
    };
    let filters =
        serde_json::json!([{"property": "status", "operation": "IN", "values": ["closed"]}]);
    let per: serde_json::Value = post(
        "/reports/conversations",
        serde_json::json!({"filters": filters, "metrics": ["timeToCloseMillis", "numAgentMessages"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let rows = per["data"].as_array().unwrap();
    assert!(!rows.is_empty());
    let close: Vec<f64> = rows
        .iter()
        .map(|r| r["metrics"][0].as_f64().unwrap())
        .collect();
    let agent_max = rows
        .iter()
        .map(|r| r["metrics"][1].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    let r = post(
        "/reports/conversation-summary",
        serde_json::json!({"filters": filters, "metrics": [
            {"type": "AVG", "property": "timeToCloseMillis"},
            {"type": "COUNT", "property": "timeToCloseMillis"},
            {"type": "MAX", "property": "numAgentMessages"},
            {"type": "AVG", "property": "noSuchMetric"}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let s: serde_json::Value = r.json().await.unwrap();
    let avg = close.iter().sum::<f64>() / close.len() as f64;
    assert!(
        (s["data"][0]["value"].as_f64().unwrap() - avg).abs() < 1e-6,
        "{s}"
    );
    assert_eq!(s["data"][1]["value"].as_f64().unwrap(), close.len() as f64);
    assert_eq!(s["data"][2]["value"].as_f64().unwrap(), agent_max);
    assert_eq!(s["data"][3]["value"], "NaN");
    let bad = post(
        "/reports/conversation-summary",
        serde_json::json!({"metrics": [{"type": "MEDIAN", "property": "timeToCloseMillis"}]}),
    )
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
    let e: serde_json::Value = bad.json().await.unwrap();
    assert!(e["error"]["message"].as_str().unwrap().contains("MEDIAN"));
}

#[tokio::test]
async fn users_without_ids_are_an_empty_map_and_a_non_numeric_id_is_a_json_error() {
    let sim = drift_sim::spawn(SimConfig::default(), SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(format!("{}{path}", sim.base_url()))
            .bearer_auth(sim.token())
            .send()
    };
    // Real Drift answers 2xx with an empty `data`; the simulator answered 400.
    let r = get("/users").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"data": {}}));
    // A non-numeric id: the JSON error envelope, not axum's plain-text "Invalid URL".
    for path in [
        "/conversations/abc",
        "/contacts/abc",
        "/users/abc",
        "/conversations/abc/transcript",
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
        let body: serde_json::Value = r.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(body["error"]["type"], "validation_error", "{path}: {body}");
        assert!(message.contains(path), "{path}: {message}");
    }
}

#[tokio::test]
async fn the_sdk_endpoints_answer_stats_a_json_transcript_and_a_bulk_tag_delete() {
    let sim = sim_with(30).await;
    let http = reqwest::Client::new();
    let base = sim.base_url();
    let get = |path: String| authed_get(&http, &sim, path);
    let org = sim.state.default_org();
    let (ids, messages, contact) = {
        let w = sim.state.world.lock();
        let o = w.org(org).unwrap();
        let mut by_status: std::collections::BTreeMap<String, u64> = Default::default();
        for r in o.conversations.values() {
            *by_status
                .entry(r.conversation.status.as_str().to_uppercase())
                .or_default() += 1;
        }
        let rec = o
            .conversations
            .values()
            .find(|r| !r.messages.is_empty())
            .unwrap();
        (
            by_status,
            (rec.conversation.id.0, rec.messages.len()),
            // One without generated tags.
            *o.contacts
                .keys()
                .find(|c| !o.contact_tags.contains_key(c))
                .unwrap(),
        )
    };

    // Conversations by status.
    let stats: serde_json::Value = get("/conversations/stats".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (status, n) in &ids {
        assert_eq!(stats["conversationCount"][status], *n, "{stats}");
    }
    let total: u64 = stats["conversationCount"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 30);

    // List items carry no `participants` (Drift's do not); a conversation's own GET does.
    let list: serde_json::Value = get("/conversations/list?limit=50".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = list["data"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(
        items.iter().all(|c| c.get("participants").is_none()),
        "{list}"
    );
    let legacy: serde_json::Value = get("/conversations".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        legacy["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c.get("participants").is_none())
    );
    let one: serde_json::Value = get(format!("/conversations/{}", messages.0))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(one["data"].get("participants").is_some(), "{one}");

    // The transcript as data: every message, in order, with its author's name.
    let (conv, n) = messages;
    let t: serde_json::Value = get(format!("/conversations/{conv}/json_transcript"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let lines = t["data"].as_array().unwrap();
    assert_eq!(lines.len(), n);
    assert!(
        lines
            .iter()
            .all(|l| l["authorName"].as_str().is_some_and(|s| !s.is_empty()))
    );
    assert!(
        lines
            .windows(2)
            .all(|w| w[0]["createdAt"].as_i64() <= w[1]["createdAt"].as_i64())
    );
    let missing = get("/conversations/1/json_transcript".into())
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // Tags added, then two of three removed in one call; an unknown name is ignored.
    let tags_url = format!("{base}/contacts/{}/tags", contact.0);
    let r = http
        .post(&tags_url)
        .bearer_auth(sim.token())
        .json(&serde_json::json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = http
        .post(format!("{tags_url}/delete/_bulk"))
        .bearer_auth(sim.token())
        .json(&serde_json::json!(["a", "c", "nope"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let left: serde_json::Value = get(format!("/contacts/{}/tags", contact.0))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = left["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b"]);
    let bad = http
        .post(format!("{tags_url}/delete/_bulk"))
        .bearer_auth(sim.token())
        .body("{\"not\": \"a list\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn teams_list_every_agent_and_an_unsubscribe_marks_the_contacts_with_those_emails() {
    let sim = drift_sim::spawn(SimConfig::default(), SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let base = sim.base_url();
    let org = sim.state.default_org();
    let (agents, email, id) = {
        let w = sim.state.world.lock();
        let o = w.org(org).unwrap();
        let agents: Vec<i64> = o
            .users
            .values()
            .filter(|u| !u.bot)
            .map(|u| u.id.0)
            .collect();
        let c = o
            .contacts
            .values()
            .find(|c| c.attributes.email().is_some())
            .unwrap();
        (agents, c.attributes.email().unwrap().to_owned(), c.id)
    };
    let teams: serde_json::Value = http
        .get(format!("{base}/teams/org"))
        .bearer_auth(sim.token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let members: Vec<i64> = teams["data"][0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_i64().unwrap())
        .collect();
    assert_eq!(members, agents);
    assert!(!agents.is_empty());

    let r: serde_json::Value = http
        .post(format!("{base}/emails/unsubscribe"))
        .bearer_auth(sim.token())
        .json(&serde_json::json!([
            email.to_uppercase(),
            "nobody@nowhere.example"
        ]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["data"]["contactsUpdated"].as_u64().unwrap() >= 1, "{r}");
    let w = sim.state.world.lock();
    let c = &w.org(org).unwrap().contacts[&id];
    assert_eq!(
        c.attributes.0.get("unsubscribed"),
        Some(&serde_json::Value::Bool(true))
    );
}

#[tokio::test]
async fn meetings_lead_up_to_today_and_only_the_last_30_days_are_listed() {
    let sim = drift_sim::spawn(SimConfig::default(), SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    const DAY: i64 = 86_400_000;
    let now = drift_types::now_ms();
    let (older, recent) = {
        let w = sim.state.world.lock();
        let o = w.org(sim.state.default_org()).unwrap();
        let starts: Vec<i64> = o
            .meetings
            .iter()
            .filter_map(|m| m.slot_start)
            .map(|s| s.0)
            .collect();
        (
            starts.iter().filter(|s| **s < now - 30 * DAY).count(),
            starts.iter().filter(|s| **s >= now - 30 * DAY).count(),
        )
    };
    // The data is anchored at today (it was 2026-01-01, so a default export got nothing).
    assert!(
        recent > 0 && older > 0,
        "{recent} recent and {older} older meetings"
    );
    let r: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{}/users/meetings/org?min_start_time=0&max_start_time={}",
            sim.base_url(),
            now + 365 * DAY
        ))
        .bearer_auth(sim.token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = r["data"].as_array().unwrap();
    assert_eq!(listed.len(), recent, "Drift's 30-day window");
    assert!(
        listed
            .iter()
            .all(|m| m["slotStart"].as_i64().unwrap() >= now - 30 * DAY)
    );
}

#[tokio::test]
async fn attachments_download_by_document_id_and_contact_tags_show_in_the_attributes() {
    let sim = sim_with(200).await;
    let http = reqwest::Client::new();
    let base = sim.base_url();
    let get = |path: String| authed_get(&http, &sim, path);
    let org = sim.state.default_org();
    let (conversation, tagged) = {
        let w = sim.state.world.lock();
        let o = w.org(org).unwrap();
        let rec = o
            .conversations
            .values()
            .find(|r| r.messages.iter().any(|m| m.attachments.is_some()))
            .expect("some message carries a file");
        let tagged = o
            .contact_tags
            .keys()
            .next()
            .copied()
            .expect("tagged contacts");
        (rec.conversation.id.0, tagged)
    };

    // The message lists its file; the file downloads by its document id.
    let page: serde_json::Value = get(format!("/conversations/{conversation}/messages"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let attachment = page["data"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|m| m.get("attachments"))
        .and_then(|a| a.get(0))
        .cloned()
        .expect("an attachment in the messages page");
    let id = attachment["id"].as_i64().unwrap();
    assert!(
        attachment["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/attachments/{id}/data"))
    );
    assert!(!attachment["fileName"].as_str().unwrap().is_empty());
    let r = get(format!("/attachments/{id}/data")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        attachment["mimeType"].as_str().unwrap()
    );
    let bytes = r.bytes().await.unwrap();
    assert_eq!(bytes.len() as i64, attachment["size"].as_i64().unwrap());
    assert_eq!(&bytes[..], &drift_sim::generate::attachment_bytes(id)[..]);
    let missing = get("/attachments/1/data".into()).await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert!(body["error"]["message"].is_string(), "{body}");
    let bad = get("/attachments/abc/data".into()).await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert!(body["error"]["message"].is_string(), "{body}");
    // Without the token there is nothing to download.
    let anonymous = http
        .get(format!("{base}/attachments/{id}/data"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // Legacy tags are in the contact's `tags` attribute as well as in its tag list.
    let contact = |c: i64| get(format!("/contacts/{c}"));
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["data"]["attributes"]["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|t| t["name"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let before: serde_json::Value = contact(tagged.0).await.unwrap().json().await.unwrap();
    assert!(!names(&before).is_empty(), "{before}");
    let r = http
        .post(format!("{base}/contacts/{}/tags", tagged.0))
        .bearer_auth(sim.token())
        .json(&serde_json::json!([{"name": "vip"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let after: serde_json::Value = contact(tagged.0).await.unwrap().json().await.unwrap();
    let mut want = names(&before);
    want.push("vip".into());
    assert_eq!(names(&after), want);
}

/// A simulator with a dataset of `conversations`.
async fn sim_with(conversations: u32) -> drift_sim::SimHandle {
    drift_sim::spawn(
        SimConfig {
            data: DataConfig {
                conversations,
                ..DataConfig::default()
            },
            ..SimConfig::default()
        },
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap()
}

/// `GET` with the simulator's token.
fn authed_get(
    http: &reqwest::Client,
    sim: &drift_sim::SimHandle,
    path: String,
) -> impl std::future::Future<Output = reqwest::Result<reqwest::Response>> {
    http.get(format!("{}{path}", sim.base_url()))
        .bearer_auth(sim.token())
        .send()
}
