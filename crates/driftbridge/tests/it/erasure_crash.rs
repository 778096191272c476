//! `kill -9` during an erasure with four sinks: `serve` in a child process is killed at five
//! random points of the CRM deletions and started again; in the end every CRM record of the
//! erased people is gone, each deleted once, nothing else is touched, and the store holds one
//! erasure per person with every sink done.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bridge_store::Backend;
use drift_sim::SimHandle;
use drift_types::webhook::GdprDeleteRequested;
use drift_types::{EpochMillis, WebhookEvent};
use serde_json::Value;

use crate::crm::{crm_env, emails};
use crate::helpers::*;
use crate::processes::{free_port, ready, spawn_serve_with};

fn deletes(sim: &SimHandle) -> Vec<(String, String, String)> {
    sim.state
        .crm
        .writes()
        .into_iter()
        .filter(|w| w.is_delete())
        .map(|w| (format!("{:?}", w.target), w.object, w.id))
        .collect()
}

#[tokio::test]
async fn kill_9_at_five_points_of_an_erasure_ends_with_each_crm_record_deleted_once() {
    let Some(ce) = crm_env(Backend::Sqlite, 30, "").await else {
        return;
    };
    let env = &ce.env;
    // Slow CRMs, so a kill lands between the calls of one erase job.
    env.sim.state.crm.settings.lock().latency_ms = 40;
    let ids = conversation_ids(&env.sim);
    let o = org(&env.sim);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let port = free_port();
    let mut serve = spawn_serve_with(env, port, 3, Some(ce.file.path()));
    ready(&http, serve.addr).await;
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(
            post(&http, serve.addr, &push(o, *id, n as i64))
                .await
                .unwrap(),
            200
        );
    }
    let store = bridge_store::Store::connect(&env.db.url).await.unwrap();
    drained(&store, Duration::from_secs(120)).await;

    // Three people, and the CRM records our deliveries made for them.
    let by_conversation = emails(&env.sim, &ids);
    let people: BTreeSet<String> = by_conversation.values().take(3).cloned().collect();
    assert_eq!(people.len(), 3);
    let erased_conversations: BTreeSet<i64> = by_conversation
        .iter()
        .filter(|(_, e)| people.contains(*e))
        .map(|(c, _)| *c)
        .collect();
    let rows = bridge_store::deliveries::list(&store, None, 10_000)
        .await
        .unwrap();
    let mut want: BTreeSet<(String, String, String)> = BTreeSet::new();
    for r in rows
        .iter()
        .filter(|r| erased_conversations.contains(&r.conversation_id))
    {
        for (role, id) in &r.external_ids {
            let (target, object) = match (r.sink.as_str(), role.as_str()) {
                ("hubspot", "note") => ("Hubspot", "notes"),
                ("hubspot", "contact") => ("Hubspot", "contacts"),
                ("salesforce", "task") => ("Salesforce", "Task"),
                ("salesforce", "lead") => ("Salesforce", "Lead"),
                ("salesforce", "contact") => ("Salesforce", "Contact"),
                ("marketo", "lead") => ("Marketo", "leads"),
                _ => continue,
            };
            want.insert((target.into(), object.into(), id.clone()));
        }
    }
    assert!(want.len() >= 12, "{want:?}");
    let records_before = env.sim.state.crm.dump();

    // No deletion passes until the first kill's budget is set below.
    env.sim.state.crm.settings.lock().delete_budget = Some(0);
    for email in &people {
        let ev = WebhookEvent::GdprDeleteRequested(GdprDeleteRequested {
            email: email.clone(),
            requested_at: Some(EpochMillis(drift_types::now_ms())),
        });
        let body = signed(&ev, o);
        assert_eq!(post(&http, serve.addr, &body).await.unwrap(), 200);
    }
    // Five kills, each at a random point of the deletions still to come. The CRMs hold every
    // deletion past the budget, so each kill lands after exactly `target` of them, however
    // slow this machine is; the last deletion is never reached before the last kill.
    let mut rng = 0x2545_F491_u64;
    let mut target = 0;
    for _ in 0..5 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        target = (target + 1 + rng as usize % 4).min(want.len() - 1);
        env.sim.state.crm.settings.lock().delete_budget = Some(target);
        wait_until("deletions before the kill", Duration::from_secs(60), || {
            let n = deletes(&env.sim).len();
            async move { n >= target }
        })
        .await;
        serve.child.kill().unwrap(); // SIGKILL
        serve.child.wait().unwrap();
        assert_eq!(deletes(&env.sim).len(), target, "the kill is mid-erasure");
        serve = spawn_serve_with(env, port, 3, Some(ce.file.path()));
        ready(&http, serve.addr).await;
    }
    env.sim.state.crm.settings.lock().delete_budget = None;
    drained(&store, Duration::from_secs(120)).await;
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();

    // Each record of theirs deleted once in effect; nothing else deleted.
    let got = deletes(&env.sim);
    let mut times: BTreeMap<&(String, String, String), usize> = BTreeMap::new();
    for d in &got {
        *times.entry(d).or_default() += 1;
    }
    assert!(times.values().all(|n| *n == 1), "{times:?}");
    let got: BTreeSet<_> = got.into_iter().collect();
    assert_eq!(got, want, "deleted exactly the erased people's records");
    let crm = env.sim.state.crm.dump().to_string().to_lowercase();
    for e in &people {
        assert!(!crm.contains(e.as_str()), "{e} is still in a CRM");
    }
    let count = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_array).map_or(0, Vec::len);
    let after = env.sim.state.crm.dump();
    assert_eq!(
        count(&after, "/hubspot/contacts"),
        count(&records_before, "/hubspot/contacts") - 3
    );
    assert_eq!(
        count(&after, "/marketo/leads"),
        count(&records_before, "/marketo/leads") - 3
    );
    // The store: one erasure per person, every sink done.
    let mut conn = store.acquire().await.unwrap();
    let log = bridge_store::privacy::erasures(&mut conn, 10)
        .await
        .unwrap();
    assert_eq!(log.len(), 3, "{log:?}");
    for e in &log {
        assert!(e.sinks.iter().all(|s| s.state == "done"), "{:?}", e.sinks);
        assert_eq!(e.sinks.len(), 5);
    }
    drop(conn);
    store.close().await;
}
