//! The CRM sinks against the CRM simulators: what a retry after an unrecorded write does.

use std::net::SocketAddr;
use std::time::Duration;

use bridge_sinks::outbound::OutboundGuard;
use bridge_sinks::registry::{NamedSink, SinkSpec};
use bridge_sinks::sink::{ConversationBundle, Prior, SinkError};
use drift_sim::{SimConfig, SimHandle};
use drift_types::{ConversationId, EpochMillis, UserId};
use serde_json::{Value, json};

async fn sim() -> SimHandle {
    drift_client::install_crypto();
    drift_sim::spawn(
        SimConfig::unlimited(5),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap()
}

/// The bundle of the `i`th conversation, as the pipeline would build it.
fn bundle(sim: &SimHandle, i: usize) -> ConversationBundle {
    let world = sim.state.world.lock();
    let org = sim.state.default_org();
    let o = world.org(org).unwrap();
    let mut ids: Vec<ConversationId> = o.conversations.keys().copied().collect();
    ids.sort();
    let rec = &o.conversations[&ids[i]];
    let contact = rec
        .conversation
        .contact_id
        .and_then(|c| o.contacts.get(&c))
        .cloned();
    let users = rec
        .conversation
        .participants
        .iter()
        .filter_map(|u| o.users.get(u))
        .cloned()
        .collect();
    let transcript =
        drift_sim::text::transcript(&rec.messages, contact.as_ref(), |u| o.users.get(&UserId(u)));
    ConversationBundle {
        org,
        event: "conversation_push".into(),
        conversation: rec.conversation.clone(),
        contact,
        users,
        messages: rec.messages.clone(),
        transcript: Some(transcript),
        playbook: None,
        attribution: None,
        meetings: Vec::new(),
        opted_out: false,
    }
}

async fn build(sim: &SimHandle, spec: Value) -> NamedSink {
    let spec: SinkSpec = serde_json::from_value(spec).unwrap();
    let guard = OutboundGuard::new(&[format!("127.0.0.1:{}", sim.addr.port())]);
    NamedSink::build("t", &spec, &guard, None).await.unwrap()
}

fn count(sim: &SimHandle, path: &str) -> usize {
    sim.state
        .crm
        .dump()
        .pointer(path)
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

#[tokio::test]
async fn a_hubspot_retry_after_an_unrecorded_create_updates_the_note_it_finds() {
    let sim = sim().await;
    sim.state.crm.settings.lock().hubspot_search_lag_ms = 1500;
    let sink = build(
        &sim,
        json!({"kind": "hubspot", "base_url": format!("{}/hubspot", sim.base_url()),
        "token": "pat-na1-driftbridge-sim", "search_lag_secs": 2}),
    )
    .await;
    let b = bundle(&sim, 0);
    let (doc, _) = sink.render(&b);
    let first = sink.deliver(&b, &doc, &Prior::default()).await.unwrap();
    assert_eq!(first.created, 2, "contact and note");
    // The process died before recording `first`: the next attempt only knows it began.
    let crashed = Prior {
        pending_since: Some(EpochMillis::now().0),
        ..Prior::default()
    };
    match sink.deliver(&b, &doc, &crashed).await {
        Err(SinkError::Retry {
            after: Some(wait), ..
        }) => assert!(wait <= Duration::from_secs(2)),
        other => panic!("expected a wait for the search index, got {other:?}"),
    }
    assert_eq!(count(&sim, "/hubspot/notes"), 1);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let again = sink.deliver(&b, &doc, &crashed).await.unwrap();
    assert_eq!(
        (again.created, again.updated),
        (0, 2),
        "found by search, updated"
    );
    assert_eq!(again.external["note"], first.external["note"]);
    assert_eq!(count(&sim, "/hubspot/notes"), 1);
    assert_eq!(count(&sim, "/hubspot/contacts"), 1);
    // With the stored id, the note is patched without a search.
    let searches_before = sim
        .state
        .crm
        .stats(drift_sim::crm::Target::Hubspot)
        .requests;
    let known = Prior {
        external: first.external.clone(),
        pending_since: None,
    };
    sink.deliver(&b, &doc, &known).await.unwrap();
    assert_eq!(
        sim.state
            .crm
            .stats(drift_sim::crm::Target::Hubspot)
            .requests,
        searches_before + 2
    );
    sim.stop().await;
}

#[tokio::test]
async fn salesforce_links_the_task_to_an_existing_contact_and_creates_no_lead() {
    let sim = sim().await;
    let b = bundle(&sim, 1);
    let email = b.email().unwrap();
    let http = reqwest::Client::new();
    let seeded: Value = http
        .post(format!("{}/sim/crm/salesforce/seed", sim.base_url()))
        .json(&json!({"object": "Contact", "fields": {"Email": email, "LastName": "Known"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sink = build(
        &sim,
        json!({"kind": "salesforce", "login_url": format!("{}/salesforce", sim.base_url()),
        "client_id": "sim-salesforce-client", "client_secret": "sim-salesforce-secret",
        "refresh_token": "sim-salesforce-refresh"}),
    )
    .await;
    let (doc, _) = sink.render(&b);
    let d = sink.deliver(&b, &doc, &Prior::default()).await.unwrap();
    assert_eq!(d.external["contact"], seeded["id"].as_str().unwrap());
    assert_eq!(count(&sim, "/salesforce/Lead"), 0);
    let dump = sim.state.crm.dump();
    let task = &dump["salesforce"]["Task"][0]["fields"];
    assert_eq!(task["WhoId"], seeded["id"]);
    assert_eq!(task["Status"], "Completed");
    // The same delivery again (a crash before recording): the same Task, updated.
    let d2 = sink.deliver(&b, &doc, &Prior::default()).await.unwrap();
    assert_eq!(d2.external["task"], d.external["task"]);
    assert_eq!(count(&sim, "/salesforce/Task"), 1);
    sim.stop().await;
}

#[tokio::test]
async fn marketo_stays_inside_its_concurrency_and_rate_limits() {
    let sim = sim().await;
    {
        let mut s = sim.state.crm.settings.lock();
        s.latency_ms = 50;
        s.marketo_per_20s = 20;
    }
    let sink = build(
        &sim,
        json!({"kind": "marketo", "base_url": format!("{}/marketo", sim.base_url()),
        "client_id": "sim-marketo-client", "client_secret": "sim-marketo-secret",
        "calls_per_20s": 20}),
    )
    .await;
    let bundles: Vec<ConversationBundle> = (0..5).map(|i| bundle(&sim, i)).collect();
    // 30 deliveries at once over 5 conversations (31 calls with the token): at most 10 in
    // flight, and 20 per 20 s, so the sink waits for the window rather than meeting a 606.
    let tasks = (0..30).map(|i| {
        let b = &bundles[i % 5];
        let sink = &sink;
        async move {
            let (doc, _) = sink.render(b);
            sink.deliver(b, &doc, &Prior::default()).await
        }
    });
    let results = futures::future::join_all(tasks).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let st = sim.state.crm.stats(drift_sim::crm::Target::Marketo);
    assert_eq!(st.throttled, 0, "no 606 or 615");
    let emails: std::collections::BTreeSet<String> = bundles
        .iter()
        .filter_map(ConversationBundle::email)
        .collect();
    assert_eq!(count(&sim, "/marketo/leads"), emails.len());
    sim.stop().await;
}

/// Every path of a context, down to lists, nulls, values and contact attributes.
fn paths(v: &Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
    if let Value::Object(o) = v {
        for (k, x) in o {
            let p = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.insert(p.clone());
            if p != "contact.attributes" {
                paths(x, &p, out);
            }
        }
    }
}

#[tokio::test]
async fn the_template_shape_holds_every_path_a_rendered_context_has() {
    use bridge_sinks::sink::{TranscriptFormat, context_shape};
    let sim = sim().await;
    let mut shape = std::collections::BTreeSet::new();
    paths(&context_shape(), "", &mut shape);
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..5 {
        paths(
            &bundle(&sim, i).context(TranscriptFormat::Text),
            "",
            &mut seen,
        );
    }
    let missing: Vec<&String> = seen.difference(&shape).collect();
    assert!(missing.is_empty(), "paths the shape lacks: {missing:?}");
    assert!(seen.contains("contact.email") && seen.contains("conversation.status"));
}

#[tokio::test]
async fn a_crm_host_that_does_not_resolve_builds_and_its_deliveries_retry() {
    let sim = sim().await;
    let b = bundle(&sim, 0);
    let guard = OutboundGuard::new(&[]);
    for spec in [
        json!({"kind": "hubspot", "token": "t", "base_url": "https://crm.no-such-host.invalid"}),
        json!({"kind": "http", "url": "https://hooks.no-such-host.invalid/x",
               "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
    ] {
        let spec: SinkSpec = serde_json::from_value(spec).unwrap();
        // One CRM's DNS outage must not stop serve: the sink builds ...
        let sink = NamedSink::build("down", &spec, &guard, None)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", spec.kind()));
        // ... marked down, with the reason ...
        let h = sink.health();
        assert!(!h.up, "{}", spec.kind());
        assert!(
            h.error.as_deref().unwrap().contains("does not resolve"),
            "{h:?}"
        );
        // ... and each delivery is a retry until the name resolves, never a dead letter.
        let (doc, _) = sink.render(&b);
        match sink.deliver(&b, &doc, &Prior::default()).await {
            Err(SinkError::Retry { .. }) => {}
            other => panic!("{}: expected a retry, got {other:?}", spec.kind()),
        }
        assert!(!sink.health().up);
    }
    // A forbidden address is still refused at build, resolvable or not.
    let spec: SinkSpec = serde_json::from_value(
        json!({"kind": "hubspot", "token": "t", "base_url": "http://10.0.0.1"}),
    )
    .unwrap();
    assert!(NamedSink::build("lan", &spec, &guard, None).await.is_err());
}

#[tokio::test]
async fn a_sink_is_down_while_its_crm_fails_and_up_again_after_a_delivery() {
    let sim = sim().await;
    let sink = build(
        &sim,
        json!({"kind": "hubspot", "base_url": format!("{}/hubspot", sim.base_url()),
        "token": "pat-na1-driftbridge-sim"}),
    )
    .await;
    assert!(sink.health().up, "a resolvable host starts up");
    let b = bundle(&sim, 0);
    let (doc, _) = sink.render(&b);
    sim.state.crm.set_fault(
        drift_sim::crm::Target::Hubspot,
        drift_sim::crm::FaultMode::Unavailable,
        Duration::from_secs(60),
    );
    assert!(matches!(
        sink.deliver(&b, &doc, &Prior::default()).await,
        Err(SinkError::Retry { .. })
    ));
    let h = sink.health();
    assert!(!h.up);
    assert!(h.error.as_deref().unwrap().contains("503"), "{h:?}");
    sim.state.crm.set_fault(
        drift_sim::crm::Target::Hubspot,
        drift_sim::crm::FaultMode::Unavailable,
        Duration::ZERO,
    );
    sink.deliver(&b, &doc, &Prior::default()).await.unwrap();
    let h = sink.health();
    assert!(h.up && h.error.is_none(), "{h:?}");
    sim.stop().await;
}

#[tokio::test]
async fn a_meeting_event_or_a_late_first_touch_writes_the_contact_but_no_note_or_task() {
    let sim = sim().await;
    let hubspot = build(
        &sim,
        json!({"kind": "hubspot", "base_url": format!("{}/hubspot", sim.base_url()),
        "token": "pat-na1-driftbridge-sim", "search_lag_secs": 0}),
    )
    .await;
    let salesforce = build(
        &sim,
        json!({"kind": "salesforce", "login_url": format!("{}/salesforce", sim.base_url()),
            "client_id": "sim-salesforce-client", "client_secret": "sim-salesforce-secret",
            "refresh_token": "sim-salesforce-refresh"}),
    )
    .await;
    for (i, event) in ["new_meeting", "meeting_updated", "widget_attribution"]
        .into_iter()
        .enumerate()
    {
        let mut b = bundle(&sim, i);
        b.event = event.into();
        for sink in [&hubspot, &salesforce] {
            let (doc, _) = sink.render(&b);
            sink.deliver(&b, &doc, &Prior::default()).await.unwrap();
        }
    }
    assert!(
        count(&sim, "/hubspot/contacts") >= 1,
        "the contacts are written"
    );
    assert_eq!(count(&sim, "/hubspot/notes"), 0, "no note before the push");
    assert_eq!(
        count(&sim, "/salesforce/Task"),
        0,
        "no Task before the push"
    );
    // The push writes them.
    let b = bundle(&sim, 0);
    for sink in [&hubspot, &salesforce] {
        let (doc, _) = sink.render(&b);
        sink.deliver(&b, &doc, &Prior::default()).await.unwrap();
    }
    assert_eq!(count(&sim, "/hubspot/notes"), 1);
    assert_eq!(count(&sim, "/salesforce/Task"), 1);
}
