//! The CRM/MAP pipeline end to end: `serve` syncs pushed conversations and delivers them to
//! the HubSpot, Salesforce and Marketo simulators and to a real HTTP receiver.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use bridge_queue::JobState;
use bridge_store::Backend;
use drift_sim::SimHandle;
use drift_sim::crm::{FaultMode, Target};
use drift_types::ConversationId;
use serde_json::{Value, json};

use crate::helpers::*;

pub const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A local endpoint recording every POST (path, headers, body).
#[derive(Clone, Default)]
pub struct Hook {
    pub got: Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>,
    pub port: u16,
}

pub async fn hook() -> Hook {
    let mut h = Hook::default();
    let got = h.got.clone();
    let app = axum::Router::new().route(
        "/{path}",
        axum::routing::post(
            move |axum::extract::Path(path): axum::extract::Path<String>,
                  headers: HeaderMap,
                  body: Bytes| {
                let got = got.clone();
                async move {
                    got.lock().unwrap().push((path, headers, body));
                    "ok"
                }
            },
        ),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    h.port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await });
    h
}

/// `[outbound]` and `[sinks]` for the simulators and the hook.
pub fn sinks_toml(sim: &SimHandle, hook_port: u16) -> String {
    let base = sim.base_url();
    let port = sim.addr.port();
    format!(
        r#"
[outbound]
allow = ["127.0.0.1:{port}", "127.0.0.1:{hook_port}"]

[sinks.hubspot]
kind = "hubspot"
base_url = "{base}/hubspot"
token = "pat-na1-driftbridge-sim"
search_lag_secs = 2

[sinks.salesforce]
kind = "salesforce"
login_url = "{base}/salesforce"
client_id = "sim-salesforce-client"
client_secret = "sim-salesforce-secret"
refresh_token = "sim-salesforce-refresh"

[sinks.marketo]
kind = "marketo"
base_url = "{base}/marketo"
client_id = "sim-marketo-client"
client_secret = "sim-marketo-secret"
calls_per_20s = 100000

[sinks.webhook]
kind = "http"
url = "http://127.0.0.1:{hook_port}/all"
secret = "{WHSEC}"

[sinks.hot]
kind = "http"
url = "http://127.0.0.1:{hook_port}/hot"
secret = "{WHSEC}"
[sinks.hot.filter]
contact = [{{ attribute = "lead_score", op = "gte", value = 50 }}]
"#
    )
}

/// Sinks: the HubSpot simulator only, with no search lag.
pub fn hubspot_only(sim: &drift_sim::SimHandle, _: u16) -> String {
    format!(
        r#"
[outbound]
allow = ["127.0.0.1:{}"]
[sinks.hubspot]
kind = "hubspot"
base_url = "{}/hubspot"
token = "pat-na1-driftbridge-sim"
search_lag_secs = 0
"#,
        sim.addr.port(),
        sim.base_url()
    )
}

pub struct CrmEnv {
    pub env: Env,
    pub hook: Hook,
    pub file: tempfile::NamedTempFile,
}

pub async fn crm_env(backend: Backend, conversations: u32, extra: &str) -> Option<CrmEnv> {
    env_with_sinks(backend, conversations, |sim, port| {
        format!("{}\n{extra}", sinks_toml(sim, port))
    })
    .await
}

/// An environment whose config file is `toml(sim, hook_port)`.
pub async fn env_with_sinks(
    backend: Backend,
    conversations: u32,
    toml: impl FnOnce(&SimHandle, u16) -> String,
) -> Option<CrmEnv> {
    let mut env = env(backend, conversations).await?;
    let hook = hook().await;
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(file.path(), toml(&env.sim, hook.port)).unwrap();
    env.config = config_with(&env.db.url, &env.sim, Some(file.path()));
    env.config.workers.concurrency = 16;
    // Plenty of HubSpot headroom unless a test is about the limit.
    let mut s = env.sim.state.crm.settings.lock().clone();
    s.hubspot_per_10s = 100_000;
    s.hubspot_search_per_sec = 10_000;
    s.marketo_per_20s = 100_000;
    *env.sim.state.crm.settings.lock() = s;
    Some(CrmEnv { env, hook, file })
}

/// Distinct contact emails of the conversations, by conversation.
pub fn emails(sim: &SimHandle, ids: &[ConversationId]) -> BTreeMap<i64, String> {
    let world = sim.state.world.lock();
    let o = world.org(sim.state.default_org()).unwrap();
    ids.iter()
        .filter_map(|id| {
            let c = &o.conversations[id].conversation;
            let contact = o.contacts.get(&c.contact_id?)?;
            Some((id.0, contact.attributes.email()?.to_lowercase()))
        })
        .collect()
}

fn records(dump: &Value, path: &str) -> Vec<Value> {
    dump.pointer(path)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn field<'a>(r: &'a Value, k: &str) -> &'a str {
    r["fields"][k].as_str().unwrap_or_default()
}

/// Exactly one HubSpot contact per email and note per conversation (with its transcript), one
/// Salesforce Lead per email and Task per conversation, one Marketo lead per email.
pub fn assert_crms_hold_exactly(sim: &SimHandle, ids: &[ConversationId], check_transcripts: bool) {
    let dump = sim.state.crm.dump();
    let org = sim.state.default_org().0;
    let want_emails: BTreeSet<String> = emails(sim, ids).into_values().collect();
    let contacts = records(&dump, "/hubspot/contacts");
    let got: BTreeSet<String> = contacts
        .iter()
        .map(|c| field(c, "email").to_owned())
        .collect();
    assert_eq!(contacts.len(), want_emails.len(), "HubSpot contacts");
    assert_eq!(got, want_emails, "HubSpot contact emails");
    let notes = records(&dump, "/hubspot/notes");
    let keys: BTreeSet<String> = notes
        .iter()
        .map(|n| field(n, "drift_conversation_id").to_owned())
        .collect();
    assert_eq!(notes.len(), ids.len(), "HubSpot notes");
    let want_keys: BTreeSet<String> = ids.iter().map(|i| format!("{org}:{}", i.0)).collect();
    assert_eq!(keys, want_keys, "one note per conversation");
    let leads = records(&dump, "/salesforce/Lead");
    let lead_emails: BTreeSet<String> = leads
        .iter()
        .map(|l| field(l, "Email").to_lowercase())
        .collect();
    assert_eq!(leads.len(), want_emails.len(), "Salesforce Leads");
    assert_eq!(lead_emails, want_emails);
    let tasks = records(&dump, "/salesforce/Task");
    assert_eq!(tasks.len(), ids.len(), "Salesforce Tasks");
    let task_keys: BTreeSet<String> = tasks
        .iter()
        .map(|t| field(t, "Drift_Conversation_Id__c").to_owned())
        .collect();
    assert_eq!(task_keys.len(), ids.len());
    for t in &tasks {
        assert_eq!(field(t, "Status"), "Completed");
        assert!(field(t, "WhoId").starts_with("00Q"), "{t}");
    }
    let mleads = records(&dump, "/marketo/leads");
    assert_eq!(mleads.len(), want_emails.len(), "Marketo leads");
    if check_transcripts {
        let world = sim.state.world.lock();
        let o = world.org(sim.state.default_org()).unwrap();
        for n in &notes {
            let key = field(n, "drift_conversation_id");
            let id: i64 = key.split(':').nth(1).unwrap().parse().unwrap();
            let transcript = sim_transcript(o, ConversationId(id));
            let body = field(n, "hs_note_body");
            for line in transcript.lines().filter(|l| !l.trim().is_empty()) {
                assert!(body.contains(&escape(line)), "note of {id} lacks {line:?}");
            }
            assert_eq!(n["associations"].as_array().map(Vec::len), Some(1), "{n}");
        }
        for t in &tasks {
            let key = field(t, "Drift_Conversation_Id__c");
            let id: i64 = key.split('-').nth(1).unwrap().parse().unwrap();
            let transcript = sim_transcript(o, ConversationId(id));
            assert!(
                field(t, "Description").contains(transcript.trim()),
                "task of {id}"
            );
        }
    }
}

fn sim_transcript(o: &drift_sim::world::Org, id: ConversationId) -> String {
    let rec = &o.conversations[&id];
    let contact = rec.conversation.contact_id.and_then(|c| o.contacts.get(&c));
    drift_sim::text::transcript(&rec.messages, contact, |u| {
        o.users.get(&drift_types::UserId(u))
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Verifies every recorded delivery with the reference Python library; `None` when skipped.
fn verify_with_python(deliveries: &[(String, HeaderMap, Bytes)]) -> Option<usize> {
    let py = crate::export::python_with("standardwebhooks")?;
    let items: Vec<Value> = deliveries
        .iter()
        .map(|(_, h, b)| {
            let hv = |k: &str| {
                h.get(k)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            json!({"id": hv("webhook-id"), "timestamp": hv("webhook-timestamp"),
                   "signature": hv("webhook-signature"), "body": String::from_utf8_lossy(b)})
        })
        .collect();
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), serde_json::to_vec(&items).unwrap()).unwrap();
    let script = r#"
import json, sys
from standardwebhooks import Webhook
wh = Webhook(sys.argv[2])
n = 0
for d in json.load(open(sys.argv[1])):
    wh.verify(d["body"], {"webhook-id": d["id"], "webhook-timestamp": d["timestamp"], "webhook-signature": d["signature"]})
    n += 1
print(n)
"#;
    let out = std::process::Command::new(py)
        .args(["-c", script, &f.path().display().to_string(), WHSEC])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).trim().parse().unwrap())
}

pub async fn push_all(addr: SocketAddr, sim: &SimHandle, ids: &[ConversationId], n0: i64) {
    let http = reqwest::Client::new();
    let o = org(sim);
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(
            post(&http, addr, &push(o, *id, n0 + n as i64))
                .await
                .unwrap(),
            200
        );
    }
}

fn creates_and_updates(sim: &SimHandle) -> (u64, u64) {
    let mut c = 0;
    let mut u = 0;
    for t in [Target::Hubspot, Target::Salesforce, Target::Marketo] {
        let s = sim.state.crm.stats(t);
        c += s.created;
        u += s.updated;
    }
    (c, u)
}

#[tokio::test]
async fn two_hundred_pushes_land_once_in_every_crm_and_repushes_and_replays_only_update() {
    let Some(ce) = crm_env(Backend::Sqlite, 200, "").await else {
        return;
    };
    let env = &ce.env;
    let ids = conversation_ids(&env.sim);
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    let store = running.queue.store().clone();
    push_all(running.addr, &env.sim, &ids, 0).await;
    drained(&store, Duration::from_secs(120)).await;
    assert_eq!(running.queue.list(JobState::Dead, 5).await.unwrap(), vec![]);
    assert_crms_hold_exactly(&env.sim, &ids, true);

    // The HTTP receiver: one signed delivery per conversation, verified independently.
    let all: Vec<_> = ce
        .hook
        .got
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, ..)| p == "all")
        .cloned()
        .collect();
    assert_eq!(all.len(), ids.len(), "one delivery per conversation");
    let ids_seen: BTreeSet<i64> = all
        .iter()
        .map(|(_, _, b)| {
            serde_json::from_slice::<Value>(b).unwrap()["data"]["conversation"]["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(ids_seen.len(), ids.len());
    if let Some(n) = verify_with_python(&all) {
        assert_eq!(n, ids.len());
    }
    let body: Value = serde_json::from_slice(&all[0].2).unwrap();
    assert_eq!(body["type"], "drift.conversation_push");
    assert!(
        body["data"]["transcript"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );

    // Routing: only conversations whose contact's lead_score >= 50 reach `hot`.
    let hot: BTreeSet<i64> = ce
        .hook
        .got
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, ..)| p == "hot")
        .map(|(_, _, b)| {
            serde_json::from_slice::<Value>(b).unwrap()["data"]["conversation"]["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    let want_hot: BTreeSet<i64> = {
        let world = env.sim.state.world.lock();
        let o = world.org(org(&env.sim)).unwrap();
        ids.iter()
            .filter(|id| {
                let c = &o.conversations[id].conversation;
                c.contact_id
                    .and_then(|cid| o.contacts.get(&cid))
                    .and_then(|ct| ct.attributes.0.get("lead_score"))
                    .and_then(Value::as_i64)
                    .is_some_and(|s| s >= 50)
            })
            .map(|id| id.0)
            .collect()
    };
    assert!(
        !want_hot.is_empty() && want_hot.len() < ids.len(),
        "{}",
        want_hot.len()
    );
    assert_eq!(
        hot, want_hot,
        "the filtered sink got exactly the matching conversations"
    );

    // Pushed again: nothing changes at all (same content is not re-sent).
    let (c0, u0) = creates_and_updates(&env.sim);
    let hook_before = ce.hook.got.lock().unwrap().len();
    push_all(running.addr, &env.sim, &ids, 10_000).await;
    drained(&store, Duration::from_secs(120)).await;
    assert_eq!(creates_and_updates(&env.sim), (c0, u0));
    assert_eq!(ce.hook.got.lock().unwrap().len(), hook_before);
    assert_crms_hold_exactly(&env.sim, &ids, false);
    let m = running.metrics.render(&[]);
    assert!(
        m.contains("driftbridge_sink_deliveries_total{sink=\"hubspot\",outcome=\"unchanged\"} 200"),
        "{m}"
    );

    // Every conversation replayed to every CRM: updates only.
    for id in &ids {
        driftbridge::ops::replay_conversation(
            &env.config,
            id.0,
            None,
            &["hubspot".into(), "salesforce".into(), "marketo".into()],
        )
        .await
        .unwrap();
    }
    drained(&store, Duration::from_secs(120)).await;
    let (c1, u1) = creates_and_updates(&env.sim);
    assert_eq!(c1, c0, "a replay created records");
    assert!(u1 > u0, "replays update");
    assert_crms_hold_exactly(&env.sim, &ids, false);
    let m = running.metrics.render(&[]);
    assert!(
        m.contains(
            "driftbridge_sink_deliveries_total{sink=\"salesforce\",outcome=\"updated\"} 200"
        ),
        "{m}"
    );
    let rows = bridge_store::deliveries::list(&store, Some("hubspot"), 1000)
        .await
        .unwrap();
    assert_eq!(rows.len(), ids.len());
    assert!(rows.iter().all(|r| r.state == "delivered"
        && r.external_ids.contains_key("note")
        && r.deliveries == 2));
    running.stop().await;
}

#[tokio::test]
async fn crms_failing_for_a_minute_get_everything_afterwards_with_the_waits_they_ask_for() {
    let Some(mut ce) = crm_env(Backend::Sqlite, 40, "").await else {
        return;
    };
    ce.env.config.workers.max_attempts = 30;
    ce.env.config.workers.backoff_base_ms = 1000;
    ce.env.config.workers.backoff_cap_secs = 8;
    let env = &ce.env;
    let crm = &env.sim.state.crm;
    let minute = Duration::from_secs(60);
    crm.set_fault(Target::Hubspot, FaultMode::RateLimit, minute);
    crm.set_fault(Target::Salesforce, FaultMode::Unavailable, minute);
    crm.set_fault(Target::Marketo, FaultMode::RateLimit, minute);
    let ids = conversation_ids(&env.sim);
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    let store = running.queue.store().clone();
    push_all(running.addr, &env.sim, &ids, 0).await;
    drained(&store, Duration::from_secs(200)).await;
    assert_eq!(running.queue.list(JobState::Dead, 5).await.unwrap(), vec![]);
    assert_crms_hold_exactly(&env.sim, &ids, false);
    // HubSpot asks for 10 s after a 429 and Marketo's 606 means 20 s: the sink pauses every
    // job that long, so a minute of refusals sees a few rounds, not a retry storm.
    let conc = env.config.workers.concurrency as u64;
    let hs = crm.stats(Target::Hubspot);
    assert!(
        hs.faulted > 0 && hs.faulted <= 7 * conc,
        "HubSpot saw {} refused calls",
        hs.faulted
    );
    let mk = crm.stats(Target::Marketo);
    assert!(
        mk.faulted > 0 && mk.faulted <= 4 * conc,
        "Marketo saw {} refused calls",
        mk.faulted
    );
    assert!(crm.stats(Target::Salesforce).faulted > 0);
    let m = running.metrics.render(&[]);
    assert!(
        m.contains("driftbridge_sink_deliveries_total{sink=\"hubspot\",outcome=\"throttled\"}"),
        "{m}"
    );
    assert!(
        m.contains("driftbridge_sink_deliveries_total{sink=\"salesforce\",outcome=\"retried\"}"),
        "{m}"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_mapping_the_crm_rejects_is_a_dead_letter_with_the_crm_message_and_is_not_retried() {
    let Some(ce) = env_with_sinks(Backend::Sqlite, 3, |sim, _| {
        format!(
            r#"
[outbound]
allow = ["127.0.0.1:{}"]
[sinks.sf]
kind = "salesforce"
login_url = "{}/salesforce"
client_id = "sim-salesforce-client"
client_secret = "sim-salesforce-secret"
refresh_token = "sim-salesforce-refresh"
fields = {{ Company = "" }}
"#,
            sim.addr.port(),
            sim.base_url()
        )
    })
    .await
    else {
        return;
    };
    let env = &ce.env;
    let ids = conversation_ids(&env.sim);
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    let store = running.queue.store().clone();
    push_all(running.addr, &env.sim, &ids[..1], 0).await;
    drained(&store, Duration::from_secs(60)).await;
    let dead = running.queue.list(JobState::Dead, 5).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].name, "deliver_conversation");
    assert_eq!(dead[0].attempts, 1, "a refusal is not retried");
    let err = dead[0].last_error.clone().unwrap();
    assert!(
        err.contains("REQUIRED_FIELD_MISSING") && err.contains("[Company]"),
        "{err}"
    );
    let row = bridge_store::deliveries::list(&store, Some("sf"), 5)
        .await
        .unwrap();
    assert_eq!(row[0].state, "failed");
    assert!(row[0].last_error.as_deref().unwrap().contains("Company"));
    let m = running.metrics.render(&[]);
    assert!(
        m.contains("driftbridge_sink_deliveries_total{sink=\"sf\",outcome=\"failed\"} 1"),
        "{m}"
    );
    running.stop().await;
}

#[tokio::test]
async fn an_expired_salesforce_session_is_refreshed_once_and_the_calls_retried() {
    let Some(ce) = crm_env(Backend::Sqlite, 30, "").await else {
        return;
    };
    let env = &ce.env;
    let ids = conversation_ids(&env.sim);
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    let store = running.queue.store().clone();
    push_all(running.addr, &env.sim, &ids[..10], 0).await;
    drained(&store, Duration::from_secs(60)).await;
    let issued = |sim: &SimHandle| {
        sim.state.crm.dump()["salesforce"]["sessions_issued"]
            .as_u64()
            .unwrap()
    };
    let before = issued(&env.sim);
    let http = reqwest::Client::new();
    http.post(format!("{}/sim/crm/salesforce/expire", env.sim.base_url()))
        .send()
        .await
        .unwrap();
    push_all(running.addr, &env.sim, &ids[10..], 100).await;
    drained(&store, Duration::from_secs(60)).await;
    assert_eq!(running.queue.list(JobState::Dead, 5).await.unwrap(), vec![]);
    assert_eq!(
        issued(&env.sim),
        before + 1,
        "one refresh for every job that met the expired session"
    );
    assert_crms_hold_exactly(&env.sim, &ids, false);
    running.stop().await;
}

#[tokio::test]
async fn kill_9_during_two_hundred_pushes_still_leaves_one_record_of_each_kind() {
    let Some(ce) = crm_env(Backend::Sqlite, 200, "").await else {
        return;
    };
    let env = &ce.env;
    {
        let mut s = env.sim.state.crm.settings.lock();
        s.latency_ms = 20;
        s.hubspot_search_lag_ms = 1000;
    }
    let ids = conversation_ids(&env.sim);
    let o = org(&env.sim);
    let pending = crate::processes::post_through_three_kills(
        env,
        ce.file.path(),
        ids.clone(),
        |round, n, id| push(o, *id, (round * 1000 + n) as i64),
        0x9E37_79B9,
    )
    .await;
    assert!(pending.is_empty(), "every push acknowledged in the end");
    assert_crms_hold_exactly(&env.sim, &ids, true);
}

fn cli(ce: &CrmEnv, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_driftbridge"))
        .arg("--config")
        .arg(ce.file.path())
        .args(args)
        .env("DRIFTBRIDGE_DATABASE__URL", &ce.env.db.url)
        .env(
            "DRIFTBRIDGE_MASTER_KEY",
            ce.env.config.secrets.master_key.as_ref().unwrap().expose(),
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn crm_credentials_live_in_the_vault_and_a_rotated_refresh_token_survives_a_restart() {
    let Some(ce) = env_with_sinks(Backend::Sqlite, 12, |sim, _| {
        format!(
            r#"
[outbound]
allow = ["127.0.0.1:{}"]
[sinks.hubspot]
kind = "hubspot"
base_url = "{base}/hubspot"
[sinks.salesforce]
kind = "salesforce"
login_url = "{base}/salesforce"
client_id = "sim-salesforce-client"
"#,
            sim.addr.port(),
            base = sim.base_url()
        )
    })
    .await
    else {
        return;
    };
    let env = &ce.env;
    let settings = env.sim.state.crm.settings.lock().clone();
    env.sim.state.crm.settings.lock().salesforce_rotate_refresh = true;
    // Without its secrets a sink cannot start, and serve says how to provide them.
    let e = driftbridge::serve::start(&env.config, true)
        .await
        .err()
        .unwrap();
    assert!(
        format!("{e:#}").contains("sinks set-secret hubspot token"),
        "{e:#}"
    );
    for (sink, field, value) in [
        ("hubspot", "token", settings.hubspot_token.as_str()),
        (
            "salesforce",
            "client_secret",
            settings.salesforce_client_secret.as_str(),
        ),
        (
            "salesforce",
            "refresh_token",
            settings.salesforce_refresh_token.as_str(),
        ),
    ] {
        let out = cli(
            &ce,
            &["sinks", "set-secret", sink, field],
            &format!("{value}\n"),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let bad = cli(&ce, &["sinks", "set-secret", "hubspot", "password"], "x");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("has no secret \"password\""));
    let list = cli(&ce, &["sinks", "list"], "");
    let list = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        list.contains("token=vault") && list.contains("refresh_token=vault"),
        "{list}"
    );

    let ids = conversation_ids(&env.sim);
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    push_all(running.addr, &env.sim, &ids[..6], 0).await;
    drained(running.queue.store(), Duration::from_secs(60)).await;
    assert_eq!(running.queue.list(JobState::Dead, 5).await.unwrap(), vec![]);
    running.stop().await;
    let rotated = env
        .sim
        .state
        .crm
        .settings
        .lock()
        .salesforce_refresh_token
        .clone();
    assert_ne!(
        rotated, settings.salesforce_refresh_token,
        "the refresh token rotated"
    );

    // A new process: its session is gone and the configured-at-first refresh token is spent,
    // so only the rotated one kept in the vault can work.
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    push_all(running.addr, &env.sim, &ids[6..], 100).await;
    drained(running.queue.store(), Duration::from_secs(60)).await;
    assert_eq!(running.queue.list(JobState::Dead, 5).await.unwrap(), vec![]);
    running.stop().await;
    let dump = env.sim.state.crm.dump();
    assert_eq!(records(&dump, "/salesforce/Task").len(), ids.len());
    assert_eq!(records(&dump, "/hubspot/notes").len(), ids.len());

    let latest = env
        .sim
        .state
        .crm
        .settings
        .lock()
        .salesforce_refresh_token
        .clone();
    let planted = [
        settings.hubspot_token.clone(),
        settings.salesforce_client_secret.clone(),
        settings.salesforce_refresh_token.clone(),
        rotated,
        latest,
    ];
    let db_path = env.db.url.trim_start_matches("sqlite:").to_owned();
    for f in [db_path.clone(), format!("{db_path}-wal")] {
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        for s in &planted {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "a CRM secret ({} chars) is in {f} in clear",
                s.len()
            );
        }
    }
}

#[tokio::test]
async fn a_sink_whose_host_does_not_resolve_is_reported_down_while_intake_and_the_other_sinks_run()
{
    let Some(ce) = env_with_sinks(Backend::Sqlite, 3, |sim, _| {
        format!(
            r#"
[admin]
metrics_public = true
[outbound]
allow = ["127.0.0.1:{}"]
[sinks.hubspot]
kind = "hubspot"
base_url = "{}/hubspot"
token = "pat-na1-driftbridge-sim"
[sinks.gone]
kind = "hubspot"
base_url = "https://crm.no-such-host.invalid"
token = "t"
"#,
            sim.addr.port(),
            sim.base_url()
        )
    })
    .await
    else {
        return;
    };
    let env = &ce.env;
    let mut config = env.config.clone();
    config.admin.token = Some(drift_types::Secret::new("admin-token-for-tests-0123456789"));
    let running = driftbridge::serve::start(&config, true).await.unwrap();
    let store = running.queue.store().clone();
    let ids = conversation_ids(&env.sim);
    push_all(running.addr, &env.sim, &ids[..1], 0).await;
    wait_until("the HubSpot delivery", Duration::from_secs(30), || async {
        env.sim.state.crm.dump()["hubspot"]["notes"]
            .as_array()
            .is_some_and(|n| n.len() == 1)
    })
    .await;
    let http = reqwest::Client::new();
    let metrics = http
        .get(format!("http://{}/metrics", running.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("driftbridge_sink_up{sink=\"gone\"} 0")
            && metrics.contains("driftbridge_sink_up{sink=\"hubspot\"} 1"),
        "{metrics}"
    );
    let sinks: Value = http
        .get(format!("http://{}/admin/api/sinks", running.addr))
        .bearer_auth("admin-token-for-tests-0123456789")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sinks["sinks"]["gone"]["up"], false, "{sinks}");
    assert!(
        sinks["sinks"]["gone"]["error"]
            .as_str()
            .unwrap()
            .contains("resolv"),
        "{sinks}"
    );
    // The unreachable sink's delivery is retried, not dead.
    let dead = running.queue.list(JobState::Dead, 5).await.unwrap();
    assert!(dead.is_empty(), "{dead:?}");
    assert!(
        count(
            &store,
            "SELECT COUNT(*) FROM jobs WHERE name = 'deliver_conversation' \
             AND state IN ('queued', 'running')"
        )
        .await
            >= 1
    );
    running.stop().await;
}
