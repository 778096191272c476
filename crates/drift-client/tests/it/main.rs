//! The client against the real simulator over TCP.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use drift_client::clock::{Clock, ManualClock};
use drift_client::{
    ClientConfig, DriftClient, ListConversations, OAuthApp, RateBudget, RefreshingToken,
    StaticToken, TokenSet,
};
use drift_sim::{DataConfig, FaultRule, RateLimitConfig, SimConfig, SimHandle};
use drift_types::{
    AccountWrite, ConversationId, NewConversation, NewConversationMessage, NewMessage,
    ReportFilter, ReportRequest, Secret, TimelineEvent, UserUpdate,
};
use futures::TryStreamExt;
use serde_json::{Map, json};

async fn sim(conversations: u32, rate: u32) -> SimHandle {
    let config = SimConfig {
        data: DataConfig {
            conversations,
            ..DataConfig::default()
        },
        rate_limit: RateLimitConfig {
            per_minute: rate,
            burst: None,
        },
        ..SimConfig::default()
    };
    drift_sim::spawn(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

fn client(sim: &SimHandle, budget: u32) -> DriftClient {
    let mut cc = ClientConfig::with_base_url(&sim.base_url()).unwrap();
    cc.budget = RateBudget {
        per_minute: budget,
        burst: None,
    };
    cc.backoff_base = Duration::from_millis(5);
    cc.timeout = Duration::from_secs(2);
    DriftClient::new(cc, Arc::new(StaticToken(Secret::new(sim.token())))).unwrap()
}

/// Some conversation of the first org.
fn first_conversation(sim: &SimHandle) -> ConversationId {
    let w = sim.state.world.lock();
    *w.orgs[&sim.state.default_org()]
        .conversations
        .keys()
        .next()
        .unwrap()
}

fn truth_ids(sim: &SimHandle) -> HashSet<i64> {
    let w = sim.state.world.lock();
    w.orgs
        .values()
        .flat_map(|o| o.conversations.keys().map(|c| c.get()))
        .collect()
}

#[tokio::test]
async fn listing_ten_thousand_conversations_yields_every_id_once_in_both_generations() {
    let sim = sim(10_000, 0).await;
    let c = client(&sim, 0);
    let truth = truth_ids(&sim);
    assert_eq!(truth.len(), 10_000);
    for legacy in [false, true] {
        let opts = ListConversations {
            limit: Some(if legacy { 50 } else { 100 }),
            ..Default::default()
        };
        let list: Vec<_> = if legacy {
            c.conversations_legacy(opts).try_collect().await
        } else {
            c.conversations(opts).try_collect().await
        }
        .unwrap();
        let ids: Vec<i64> = list.iter().map(|c| c.id.get()).collect();
        let unique: HashSet<i64> = ids.iter().copied().collect();
        assert_eq!(ids.len(), 10_000, "legacy={legacy}");
        assert_eq!(unique, truth, "legacy={legacy}");
        let sorted = list
            .windows(2)
            .all(|w| (w[0].updated_at, w[0].id) >= (w[1].updated_at, w[1].id));
        assert!(sorted, "newest-updated first");
    }
}

#[tokio::test]
async fn status_filter_returns_only_that_status() {
    let sim = sim(300, 0).await;
    let c = client(&sim, 0);
    let closed: Vec<_> = c
        .conversations(ListConversations {
            limit: Some(30),
            statuses: vec![drift_types::ConversationStatus::Closed],
        })
        .try_collect()
        .await
        .unwrap();
    let truth = sim
        .state
        .world
        .lock()
        .orgs
        .values()
        .flat_map(|o| o.conversations.values())
        .filter(|r| r.conversation.status == drift_types::ConversationStatus::Closed)
        .count();
    assert_eq!(closed.len(), truth);
    assert!(
        closed
            .iter()
            .all(|c| c.status == drift_types::ConversationStatus::Closed)
    );
}

#[tokio::test]
async fn a_120_message_conversation_arrives_complete_and_in_order() {
    let sim = sim(5, 0).await;
    let c = client(&sim, 0);
    let conv = c
        .create_conversation(&NewConversation {
            email: "long.talker@example.com".into(),
            message: NewConversationMessage {
                body: "message 0".into(),
                attributes: None,
            },
        })
        .await
        .unwrap();
    let mut posted = vec![];
    for i in 1..120 {
        let m = c
            .post_message(conv.id, &NewMessage::chat(format!("message {i}")))
            .await
            .unwrap();
        posted.push(m[0].id);
    }
    let msgs: Vec<_> = c.messages(conv.id).try_collect().await.unwrap();
    assert_eq!(msgs.len(), 120);
    let bodies: Vec<String> = msgs
        .iter()
        .map(|m| m.body.clone().unwrap_or_default())
        .collect();
    let expected: Vec<String> = (0..120).map(|i| format!("message {i}")).collect();
    assert_eq!(bodies, expected);
    assert_eq!(msgs[1..].iter().map(|m| m.id).collect::<Vec<_>>(), posted);
    assert_eq!(
        sim.state
            .log
            .lock()
            .count("GET", "/conversations/{id}/messages"),
        3,
        "50 + 50 + 20"
    );
}

#[tokio::test]
async fn a_full_walk_with_ten_percent_5xx_and_resets_misses_nothing() {
    let sim = sim(400, 0).await;
    sim.state.faults.lock().set(vec![FaultRule {
        error_rate: 0.05,
        reset_rate: 0.05,
        ..FaultRule::default()
    }]);
    let c = client(&sim, 0);
    let convs: Vec<_> = c
        .conversations(ListConversations {
            limit: Some(25),
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    let mut got = 0usize;
    for conv in &convs {
        let msgs: Vec<_> = c.messages(conv.id).try_collect().await.unwrap();
        let truth = sim
            .state
            .world
            .lock()
            .orgs
            .values()
            .next()
            .unwrap()
            .conversations[&conv.id]
            .messages
            .len();
        assert_eq!(msgs.len(), truth);
        got += msgs.len();
    }
    let (tc, tm) = sim.state.world.lock().counts();
    assert_eq!((convs.len(), got), (tc, tm));
    let injected = sim.state.faults.lock().injected;
    assert!(injected > 20, "faults were injected: {injected}");
    assert!(c.stats().retries.load(std::sync::atomic::Ordering::Relaxed) >= injected / 2);
}

#[tokio::test]
async fn a_budget_equal_to_the_limit_sees_no_429_in_2000_requests() {
    let sim = sim(20, 0).await;
    sim.state.limiter.lock().set_config(RateLimitConfig {
        per_minute: 24_000,
        burst: Some(20),
    });
    let c = client(&sim, 24_000);
    let id = first_conversation(&sim);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                for _ in 0..500 {
                    c.conversation(id).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let log = sim.state.log.lock();
    assert_eq!(log.count("GET", "/conversations/{id}"), 2000);
    assert_eq!(log.count_status(429), 0);
}

#[tokio::test]
async fn a_forced_429_with_retry_after_2_delays_the_next_call_by_two_seconds() {
    let sim = sim(5, 0).await;
    sim.state.faults.lock().set(vec![FaultRule {
        rate_limit_rate: 1.0,
        retry_after_secs: Some(2),
        next: Some(1),
        ..FaultRule::default()
    }]);
    let clock = Arc::new(ManualClock::default());
    let mut cc = ClientConfig::with_base_url(&sim.base_url()).unwrap();
    cc.budget = RateBudget {
        per_minute: 600,
        burst: None,
    };
    let c = DriftClient::with_clock(
        cc,
        Arc::new(StaticToken(Secret::new(sim.token()))),
        clock.clone(),
    )
    .unwrap();
    let real = std::time::Instant::now();
    let users = c.users().await.unwrap();
    assert!(!users.is_empty());
    assert!(
        clock.now() >= Duration::from_secs(2),
        "virtual time waited {:?}",
        clock.now()
    );
    assert!(clock.sleeps().iter().any(|s| *s >= Duration::from_secs(2)));
    assert!(real.elapsed() < Duration::from_secs(2), "no real sleeping");
    let log = sim.state.log.lock();
    assert_eq!(log.count_status(429), 1);
    assert_eq!(log.count("GET", "/users/list"), 2);
}

#[tokio::test]
async fn a_post_is_not_sent_twice_after_a_server_error() {
    let sim = sim(5, 0).await;
    sim.state.faults.lock().set(vec![FaultRule {
        method: Some("POST".into()),
        error_rate: 1.0,
        next: Some(1),
        ..FaultRule::default()
    }]);
    let c = client(&sim, 0);
    let id = first_conversation(&sim);
    let err = c
        .post_message(id, &NewMessage::chat("hello"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(
        sim.state
            .log
            .lock()
            .count("POST", "/conversations/{id}/messages"),
        1
    );
}

async fn oauth_install(sim: &SimHandle) -> (OAuthApp, TokenSet) {
    let base = sim.base_url();
    let app = OAuthApp::with_endpoints(
        "sim-client-id",
        Secret::new("sim-client-secret"),
        "http://127.0.0.1:1/callback",
        &format!("{base}/authorize"),
        &format!("{base}/oauth2/token"),
    )
    .unwrap();
    let url = app.authorize_url("xyz-state");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http.get(url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<form") && page.contains("xyz-state"));
    let resp = http
        .post(format!("{base}/authorize"))
        .form(&[
            ("client_id", "sim-client-id"),
            ("redirect_uri", "http://127.0.0.1:1/callback"),
            ("state", "xyz-state"),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "xyz-state");
    let tokens = app.exchange_code(&q["code"]).await.unwrap();
    assert!(
        app.exchange_code(&q["code"]).await.is_err(),
        "codes are one-time"
    );
    (app, tokens)
}

#[tokio::test]
async fn concurrent_callers_during_a_token_expiry_cause_exactly_one_refresh() {
    let sim = sim(20, 0).await;
    let (app, tokens) = oauth_install(&sim).await;
    assert_eq!(tokens.org_id, Some(sim.state.default_org()));
    let persisted = Arc::new(std::sync::Mutex::new(Vec::<TokenSet>::new()));
    let p2 = persisted.clone();
    let source = Arc::new(
        RefreshingToken::new(app, tokens.clone()).on_refresh(Arc::new(move |t| {
            p2.lock().unwrap().push(t);
            Box::pin(async { Ok(()) })
        })),
    );
    let c = DriftClient::new(
        ClientConfig::with_base_url(&sim.base_url()).unwrap(),
        source.clone(),
    )
    .unwrap();
    c.users().await.unwrap();
    // Drift expires the token; 16 callers notice at once via 401.
    sim.state
        .auth
        .lock()
        .expire(tokens.access_token.expose(), std::time::Instant::now());
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.users().await.map(|u| u.len()) })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().unwrap() > 0);
    }
    assert_eq!(source.refresh_count(), 1);
    assert_eq!(sim.state.auth.lock().refreshes, 1);
    let saved = persisted.lock().unwrap().clone();
    assert_eq!(saved.len(), 1);
    assert_ne!(
        saved[0].refresh_token, tokens.refresh_token,
        "the rotated refresh token is handed back"
    );
    // The old refresh token no longer works.
    let app2 = OAuthApp::with_endpoints(
        "sim-client-id",
        Secret::new("sim-client-secret"),
        "http://127.0.0.1:1/callback",
        "http://x/authorize",
        &format!("{}/oauth2/token", sim.base_url()),
    )
    .unwrap();
    assert!(
        app2.refresh(
            tokens.refresh_token.as_ref().unwrap(),
            std::time::SystemTime::now()
        )
        .await
        .is_err()
    );
}

#[tokio::test]
async fn every_other_endpoint_works_against_the_simulator() {
    let sim = sim(60, 0).await;
    let c = client(&sim, 0);
    let org = sim.state.default_org();
    let conv_id = first_conversation(&sim);

    let conv = c.conversation(conv_id).await.unwrap();
    assert_eq!(conv.id, conv_id);
    let transcript = c.transcript(conv_id).await.unwrap();
    assert!(
        transcript.lines().count() >= 1 && transcript.contains("UTC"),
        "{transcript}"
    );
    let err = c.conversation(ConversationId(1)).await.unwrap_err();
    assert!(err.is_not_found() && !err.is_retryable());

    let report = c
        .report_conversations(&ReportRequest {
            filters: vec![ReportFilter {
                property: "status".into(),
                operation: "IN".into(),
                values: vec![json!("closed")],
            }],
            metrics: vec!["numEndUserMessages".into()],
        })
        .await
        .unwrap();
    assert!(report.count > 0 && report.data.iter().all(|r| r.metrics.len() == 1));

    // contacts
    let mut attrs = Map::new();
    attrs.insert("email".into(), json!("new.person@example.com"));
    attrs.insert("externalId".into(), json!("ext-123"));
    let created = c.create_contact(attrs.clone()).await.unwrap();
    assert_eq!(
        c.create_contact(attrs).await.unwrap_err().status(),
        Some(409)
    );
    assert_eq!(
        c.contact(created.id).await.unwrap().attributes.email(),
        Some("new.person@example.com")
    );
    let by_email: Vec<_> = c
        .contacts_by_email("new.person@example.com")
        .try_collect()
        .await
        .unwrap();
    assert_eq!(by_email.len(), 1);
    assert_eq!(
        c.contacts_by_external_id(&["ext-123"]).await.unwrap()[0].id,
        created.id
    );
    let mut up = Map::new();
    up.insert("lead_score".into(), json!(99));
    assert_eq!(
        c.update_contact(created.id, up)
            .await
            .unwrap()
            .attributes
            .get("lead_score"),
        Some(&json!(99))
    );
    c.post_timeline_event(&TimelineEvent {
        contact_id: Some(created.id),
        external_id: None,
        created_at: None,
        event: "Downloaded whitepaper".into(),
        attributes: None,
    })
    .await
    .unwrap();
    assert!(!c.contact_attributes().await.unwrap().properties.is_empty());
    c.add_contact_tags(created.id, &["vip", "vip"])
        .await
        .unwrap();
    assert_eq!(c.contact_tags(created.id).await.unwrap().len(), 1);
    c.delete_contact_tag(created.id, "vip").await.unwrap();
    assert!(c.delete_contact(created.id).await.unwrap().ok);
    assert!(c.contact(created.id).await.unwrap_err().is_not_found());

    // users
    let users = c.users().await.unwrap();
    assert!(users.iter().any(|u| u.bot));
    let ids: Vec<_> = users.iter().map(|u| u.id).collect();
    assert_eq!(c.users_by_id(&ids).await.unwrap().len(), users.len());
    assert_eq!(c.user(ids[1]).await.unwrap().id, ids[1]);
    let updated = c
        .update_user(
            ids[1],
            &UserUpdate {
                availability: Some("OFFLINE".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.availability.as_deref(), Some("OFFLINE"));
    // Drift lists the last 30 days: one meeting is booked for tomorrow, so the list is never
    // empty whatever day the generated ones fall on.
    let now = drift_types::now_ms();
    {
        let mut world = sim.state.world.lock();
        let o = world.orgs.get_mut(&org).unwrap();
        let mut m = o.meetings[0].clone();
        m.event_id = Some("client-tomorrow".into());
        m.slot_start = Some(drift_types::EpochMillis(now + 86_400_000));
        o.meetings.push(m);
    }
    let meetings = c.meetings(0, i64::MAX / 2).await.unwrap();
    let in_window = sim.state.world.lock().orgs[&org]
        .meetings
        .iter()
        .filter(|m| m.slot_start.is_some_and(|s| s.0 >= now - 30 * 86_400_000))
        .count();
    assert!(in_window > 0);
    assert_eq!(meetings.len(), in_window);

    // accounts
    let acc = c
        .create_account(&AccountWrite {
            account_id: None,
            owner_id: ids[1],
            name: Some("Test Co".into()),
            domain: Some("testco.example".into()),
            custom_properties: vec![],
            targeted: Some(true),
        })
        .await
        .unwrap();
    assert_eq!(
        c.account(&acc.account_id).await.unwrap().name.as_deref(),
        Some("Test Co")
    );
    let all: Vec<_> = c.accounts(2).try_collect().await.unwrap();
    assert_eq!(all.len(), sim.state.world.lock().orgs[&org].accounts.len());
    let mut w = AccountWrite {
        account_id: Some(acc.account_id.clone()),
        owner_id: ids[1],
        name: Some("Renamed".into()),
        domain: None,
        custom_properties: vec![],
        targeted: None,
    };
    assert_eq!(
        c.update_account(&w).await.unwrap().name.as_deref(),
        Some("Renamed")
    );
    c.delete_account(&acc.account_id).await.unwrap();
    assert!(c.account(&acc.account_id).await.unwrap().deleted);
    w.account_id = Some("nope".into());
    assert!(c.update_account(&w).await.unwrap_err().is_not_found());

    // playbooks
    assert_eq!(c.playbooks().await.unwrap().len(), 6);
    assert_eq!(c.landing_pages().await.unwrap().len(), 2);

    // GDPR
    let email = sim.state.world.lock().orgs[&org]
        .contacts
        .values()
        .next()
        .unwrap()
        .attributes
        .email()
        .unwrap()
        .to_owned();
    let found = c.gdpr_retrieve(&email).await.unwrap();
    assert!(!found["data"]["contacts"].as_array().unwrap().is_empty());
    c.gdpr_delete(&email).await.unwrap();
    // Drift erases asynchronously; the simulator after `gdpr_delete_delay` (0 here).
    let mut erased = false;
    for _ in 0..100 {
        let after = c.gdpr_retrieve(&email).await.unwrap();
        if after["data"]["contacts"].as_array().unwrap().is_empty() {
            erased = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(erased, "the simulator never erased {email}");

    // app
    let info = c.token_info(&Secret::new(sim.token())).await.unwrap();
    assert_eq!(info.org_id(), Some(org));
    assert_eq!(info.expires_in, 0, "private-app tokens never expire");
    c.uninstall("sim-client-id", &Secret::new("sim-client-secret"))
        .await
        .unwrap();
    assert_eq!(
        c.users().await.unwrap_err().status(),
        Some(401),
        "uninstall revokes the token"
    );
}

#[tokio::test]
async fn a_missing_scope_is_a_403_that_is_not_retried() {
    let mut config = SimConfig {
        data: DataConfig {
            conversations: 5,
            ..DataConfig::default()
        },
        ..SimConfig::default()
    };
    config.app.scopes = vec!["user_read".into()];
    let sim = drift_sim::spawn(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let (app, tokens) = oauth_install(&sim).await;
    let c = DriftClient::new(
        ClientConfig::with_base_url(&sim.base_url()).unwrap(),
        Arc::new(RefreshingToken::new(app, tokens)),
    )
    .unwrap();
    assert!(c.users().await.is_ok());
    let err = c.playbooks().await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert_eq!(sim.state.log.lock().count("GET", "/playbooks/list"), 1);
}
