//! The real binary in child processes: `kill -9` during a burst, and two processes sharing
//! one PostgreSQL database.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bridge_store::testing::BACKENDS;
use bridge_store::{Backend, Store, events};
use drift_types::{Message, WebhookEnvelope, WebhookEvent};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::helpers::*;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Serve {
    pub child: Child,
    pub addr: SocketAddr,
}

/// A test that fails midway still stops its `serve`: a leftover one would go on retrying its
/// jobs against the test's stopped simulator for the rest of the run.
impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_serve(env: &Env, port: u16, lease_secs: u32) -> Serve {
    spawn_serve_with(env, port, lease_secs, None)
}

/// `serve` as a child process, reading `config` first when given.
pub fn spawn_serve_with(
    env: &Env,
    port: u16,
    lease_secs: u32,
    config: Option<&std::path::Path>,
) -> Serve {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_driftbridge"));
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let child = cmd
        .arg("serve")
        .env("DRIFTBRIDGE_DATABASE__URL", &env.db.url)
        .env("DRIFTBRIDGE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("DRIFTBRIDGE_DRIFT__BASE_URL", env.sim.base_url())
        .env("DRIFTBRIDGE_DRIFT__TOKEN", env.sim.token())
        .env(
            "DRIFTBRIDGE_DRIFT__VERIFICATION_TOKENS",
            format!("[\"{VERIFY}\"]"),
        )
        .env("DRIFTBRIDGE_DRIFT__RATE_LIMIT_PER_MINUTE", "0")
        .env(
            "DRIFTBRIDGE_MASTER_KEY",
            env.config
                .secrets
                .master_key
                .as_ref()
                .expect("key")
                .expose(),
        )
        .env("DRIFTBRIDGE_WORKERS__LEASE_SECS", lease_secs.to_string())
        .env("DRIFTBRIDGE_WORKERS__POLL_INTERVAL_MS", "50")
        .env("DRIFTBRIDGE_WORKERS__CONCURRENCY", "8")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn driftbridge serve");
    Serve {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

pub async fn ready(http: &reqwest::Client, addr: SocketAddr) {
    wait_until("serve to be ready", Duration::from_secs(30), || async {
        http.get(format!("http://{addr}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
}

fn key_of(ev: &Value) -> String {
    events::dedup_key(
        ev["type"].as_str().unwrap(),
        ev["orgId"].as_i64(),
        &ev["data"],
    )
}

#[tokio::test]
async fn kill_9_during_a_burst_loses_no_acknowledged_event() {
    for backend in BACKENDS {
        let Some(env) = env(*backend, 100).await else {
            continue;
        };
        let org = org(&env.sim);
        let ids = conversation_ids(&env.sim);
        let burst: Vec<Value> = (0..2000)
            .map(|n| push(org, ids[n % ids.len()], n as i64))
            .collect();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let port = free_port();
        let serve = spawn_serve(&env, port, 3);
        ready(&http, serve.addr).await;
        let serve = Arc::new(Mutex::new(Some(serve)));
        let acked = Arc::new(Mutex::new(BTreeSet::new()));
        // 16 concurrent senders; the process is killed after 600 acknowledgements.
        futures::stream::iter(burst.iter().enumerate())
            .for_each_concurrent(16, |(i, ev)| {
                let (http, acked, serve) = (http.clone(), acked.clone(), serve.clone());
                async move {
                    if let Ok(200) = post(&http, SocketAddr::from(([127, 0, 0, 1], port)), ev).await
                    {
                        let mut a = acked.lock().await;
                        a.insert(i);
                        if a.len() == 600
                            && let Some(mut s) = serve.lock().await.take()
                        {
                            s.child.kill().unwrap(); // SIGKILL
                            s.child.wait().unwrap();
                        }
                    }
                }
            })
            .await;
        let acked = acked.lock().await.clone();
        assert!(
            acked.len() >= 600 && acked.len() < 2000,
            "{backend:?}: {} acked",
            acked.len()
        );

        // Before any restart: every acknowledged event is on disk.
        let store = Store::connect(&env.db.url).await.unwrap();
        let stored: BTreeSet<String> =
            bridge_store::sqlx::query_scalar("SELECT dedup_key FROM events")
                .fetch_all(store.pool())
                .await
                .unwrap()
                .into_iter()
                .collect();
        for i in &acked {
            assert!(
                stored.contains(&key_of(&burst[*i])),
                "{backend:?}: acked event {i} lost"
            );
        }
        let jobs = count(&store, "SELECT COUNT(*) FROM jobs").await;
        assert_eq!(
            jobs as usize,
            stored.len(),
            "{backend:?}: one job per stored event"
        );

        // Restart; Drift re-delivers what was not acknowledged.
        let serve = spawn_serve(&env, port, 3);
        ready(&http, serve.addr).await;
        for (i, ev) in burst.iter().enumerate() {
            if !acked.contains(&i) {
                assert_eq!(post(&http, serve.addr, ev).await.unwrap(), 200);
            }
        }
        drained(&store, Duration::from_secs(300)).await;
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM events").await,
            2000,
            "{backend:?}"
        );
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM jobs WHERE state = 'done'").await,
            2000,
            "{backend:?}"
        );
        assert_ground_truth(&store, &env.sim, &ids).await;
        let mut serve = serve;
        serve.child.kill().unwrap();
        serve.child.wait().unwrap();
    }
}

#[tokio::test]
async fn two_processes_on_one_postgres_run_each_of_10000_jobs_exactly_once() {
    let Some(env) = env(Backend::Postgres, 5).await else {
        return;
    };
    // Create the schema once, so the two processes do not both start on an empty database.
    let store = Store::connect(&env.db.url).await.unwrap();
    let http = reqwest::Client::new();
    let (pa, pb) = (free_port(), free_port());
    let mut a = spawn_serve(&env, pa, 30);
    let mut b = spawn_serve(&env, pb, 30);
    ready(&http, a.addr).await;
    ready(&http, b.addr).await;
    let org = org(&env.sim);
    let cid = conversation_ids(&env.sim)[0];
    let events: Vec<Value> = (0..10_000i64)
        .map(|n| {
            let m: Message = serde_json::from_value(serde_json::json!({
                "id": 900_000_000 + n, "conversationId": cid.0, "createdAt": n,
                "body": format!("message {n}"), "author": {"type": "contact", "id": 1},
                "type": "chat"
            }))
            .unwrap();
            let env = WebhookEnvelope::new(
                &WebhookEvent::NewMessage(m),
                org,
                Some(drift_types::Secret::new(VERIFY)),
            );
            serde_json::to_value(env).unwrap()
        })
        .collect();
    let addrs = [a.addr, b.addr];
    futures::stream::iter(events.iter().enumerate())
        .for_each_concurrent(32, |(i, ev)| {
            let http = http.clone();
            async move {
                assert_eq!(post(&http, addrs[i % 2], ev).await.unwrap(), 200);
            }
        })
        .await;
    drained(&store, Duration::from_secs(300)).await;
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM jobs WHERE state = 'done'").await,
        10_000
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM jobs WHERE attempts <> 1").await,
        0
    );
    assert_eq!(count(&store, "SELECT COUNT(*) FROM messages").await, 10_000);
    let per_worker: Vec<(String, i64)> =
        bridge_store::sqlx::query_as("SELECT worker, COUNT(*) FROM jobs GROUP BY worker")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(per_worker.len(), 2, "{per_worker:?}");
    assert!(per_worker.iter().all(|(_, n)| *n > 100), "{per_worker:?}");
    for s in [&mut a, &mut b] {
        s.child.kill().unwrap();
        s.child.wait().unwrap();
    }
}

/// Posts each item's webhook to `serve` as a child process reading `config`, and `kill -9`s
/// it three times, each at a random point 10 to 160 CRM writes on, restarting it and posting
/// again what was not acknowledged (`body(round, n, item)` makes the webhook). A fourth
/// process drains the queue. Answers the items never acknowledged.
pub async fn post_through_three_kills<T>(
    env: &Env,
    config: &std::path::Path,
    items: Vec<T>,
    body: impl Fn(usize, usize, &T) -> Value,
    seed: u64,
) -> Vec<T> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let port = free_port();
    let writes = |sim: &drift_sim::SimHandle| sim.state.crm.writes().len();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut pending = items;
    for round in 0..4 {
        let mut serve = spawn_serve_with(env, port, 3, Some(config));
        ready(&http, serve.addr).await;
        let mut left = Vec::new();
        for (n, item) in pending.into_iter().enumerate() {
            if !matches!(
                post(&http, serve.addr, &body(round, n, &item)).await,
                Ok(200)
            ) {
                left.push(item);
            }
        }
        pending = left;
        if round == 3 {
            let store = Store::connect(&env.db.url).await.unwrap();
            drained(&store, Duration::from_secs(180)).await;
            serve.child.kill().unwrap();
            serve.child.wait().unwrap();
            break;
        }
        // SIGKILL at a random point of the CRM writes.
        let target = writes(&env.sim) + 10 + rng.usize(..150);
        wait_until(
            "CRM writes before the kill",
            Duration::from_secs(60),
            || {
                let n = writes(&env.sim);
                async move { n >= target }
            },
        )
        .await;
        serve.child.kill().unwrap();
        serve.child.wait().unwrap();
    }
    pending
}
