//! The webhook gateway's answers and what it stores.

use bridge_store::testing::BACKENDS;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn bad_input_gets_its_status_and_error_body_and_stores_nothing() {
    for backend in BACKENDS {
        let Some(env) = env(*backend, 5).await else {
            continue;
        };
        let running = driftbridge::serve::start(&env.config, false).await.unwrap();
        let url = format!("http://{}/webhooks/drift", running.addr);
        let http = reqwest::Client::new();
        let good = push(org(&env.sim), conversation_ids(&env.sim)[0], 1);
        let mut wrong = good.clone();
        wrong["token"] = json!("not-the-token");
        let mut none = good.clone();
        none.as_object_mut().unwrap().remove("token");
        let big = format!(r#"{{"type":"x","data":"{}"}}"#, "a".repeat(1024 * 1024 + 1));
        let cases: Vec<(&str, String, &str, u16, &str)> = vec![
            (
                "wrong token",
                wrong.to_string(),
                "application/json",
                401,
                "invalid_token",
            ),
            (
                "no token",
                none.to_string(),
                "application/json",
                401,
                "invalid_token",
            ),
            (
                "oversize",
                big,
                "application/json",
                413,
                "payload_too_large",
            ),
            (
                "malformed",
                "{\"type\": ".into(),
                "application/json",
                400,
                "invalid_json",
            ),
            (
                "array",
                "[1,2]".into(),
                "application/json",
                400,
                "invalid_envelope",
            ),
            (
                "text",
                good.to_string(),
                "text/plain",
                415,
                "unsupported_media_type",
            ),
            (
                "no type",
                json!({"token": VERIFY, "orgId": 1, "data": {}}).to_string(),
                "application/json",
                400,
                "invalid_envelope",
            ),
            (
                "no data",
                json!({"token": VERIFY, "orgId": 1, "type": "new_message"}).to_string(),
                "application/json",
                400,
                "invalid_envelope",
            ),
        ];
        for (name, body, ctype, status, code) in cases {
            let resp = http
                .post(&url)
                .header("content-type", ctype)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), status, "{backend:?} {name}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"]["code"], code, "{backend:?} {name}: {body}");
            assert!(
                body["error"]["message"].as_str().unwrap().len() > 10,
                "{name}"
            );
        }
        let store = running.queue.store().clone();
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM events").await,
            0,
            "{backend:?}"
        );
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM jobs").await,
            0,
            "{backend:?}"
        );
        let metrics = running.metrics.render(&[]);
        assert!(
            metrics.contains("driftbridge_events_rejected_total{reason=\"invalid_token\"} 2"),
            "{metrics}"
        );
        running.stop().await;
    }
}

#[tokio::test]
async fn unknown_types_are_kept_and_the_token_is_never_stored() {
    for backend in BACKENDS {
        let Some(env) = env(*backend, 5).await else {
            continue;
        };
        let running = driftbridge::serve::start(&env.config, false).await.unwrap();
        let http = reqwest::Client::new();
        let unknown = json!({"type": "brand_new_thing", "orgId": 7, "token": VERIFY,
                             "data": {"whatever": [1, 2, 3]}});
        assert_eq!(post(&http, running.addr, &unknown).await.unwrap(), 200);
        let resp = http
            .post(format!("http://{}/webhooks/drift", running.addr))
            .header("x-verification-token", VERIFY)
            .json(&json!({"type": "new_message", "orgId": 7, "data": {"id": 1,
                "conversationId": 2, "createdAt": 3, "author": {"type": "contact", "id": 4}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let store = running.queue.store().clone();
        let payloads: Vec<String> =
            bridge_store::sqlx::query_scalar("SELECT payload FROM events ORDER BY id")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert_eq!(payloads.len(), 2, "{backend:?}");
        assert!(payloads[0].contains("brand_new_thing"));
        assert!(payloads.iter().all(|p| !p.contains(VERIFY)), "{payloads:?}");
        // The unknown type makes no job; the message makes one.
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM jobs").await,
            1,
            "{backend:?}"
        );
        running.stop().await;
    }
}

#[tokio::test]
async fn an_event_delivered_five_times_across_a_restart_is_stored_once_with_one_job() {
    for backend in BACKENDS {
        let Some(env) = env(*backend, 5).await else {
            continue;
        };
        let ev = push(org(&env.sim), conversation_ids(&env.sim)[0], 1);
        // Same data, keys in another order: still the same event.
        let reordered: Value = serde_json::from_str(&{
            let mut s = String::from("{");
            let o = ev.as_object().unwrap();
            let mut keys: Vec<_> = o.keys().collect();
            keys.reverse();
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str(&format!("{}:{}", json!(k), o[*k]));
            }
            s + "}"
        })
        .unwrap();
        let http = reqwest::Client::new();
        let mut answers = Vec::new();
        for round in 0..2 {
            let running = driftbridge::serve::start(&env.config, false).await.unwrap();
            let times = if round == 0 { 3 } else { 2 };
            for i in 0..times {
                let body = if i % 2 == 0 { &ev } else { &reordered };
                let resp = http
                    .post(format!("http://{}/webhooks/drift", running.addr))
                    .json(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                answers.push(resp.json::<Value>().await.unwrap()["status"].clone());
            }
            running.stop().await;
        }
        assert_eq!(answers[0], "accepted", "{backend:?}");
        assert!(
            answers[1..].iter().all(|a| a == "duplicate"),
            "{backend:?} {answers:?}"
        );
        let store = bridge_store::Store::connect(&env.db.url).await.unwrap();
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM events").await,
            1,
            "{backend:?}"
        );
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM jobs").await,
            1,
            "{backend:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_is_kept_a_lone_surrogate_is_replaced_and_a_nul_reaches_postgres() {
    for backend in BACKENDS {
        let Some(env) = env(*backend, 5).await else {
            continue;
        };
        let running = driftbridge::serve::start(&env.config, true).await.unwrap();
        let org = env.sim.state.default_org().0;
        let conversation = crate::helpers::conversation_ids(&env.sim)[0].0;
        // Raw bytes: `\ud83d` is half of an emoji cut off by a truncation, and `\u0000` a NUL.
        let body = format!(
            r#"{{"type":"new_message","orgId":{org},"token":"{VERIFY}","data":{{"id":77,
            "conversationId":{conversation},"createdAt":3,"type":"chat",
            "author":{{"type":"contact","id":4}},"body":"cut \ud83d and nul \u0000 here"}}}}"#
        );
        let resp = reqwest::Client::new()
            .post(format!("http://{}/webhooks/drift", running.addr))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            200,
            "{backend:?}: {}",
            resp.text().await.unwrap()
        );
        let store = running.queue.store().clone();
        crate::helpers::drained(&store, std::time::Duration::from_secs(20)).await;
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM jobs WHERE state = 'dead'").await,
            0,
            "{backend:?}: the message job must not die on the NUL"
        );
        let stored: String =
            bridge_store::sqlx::query_scalar("SELECT body FROM messages WHERE id = 77")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(stored, "cut \u{fffd} and nul \u{fffd} here", "{backend:?}");
        running.stop().await;
    }
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_refused_before_it_is_sent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = env(bridge_store::Backend::Sqlite, 1).await.unwrap();
    let running = driftbridge::serve::start(&env.config, false).await.unwrap();
    let mut s = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    // 10 GiB announced; not one byte of it follows.
    s.write_all(
        b"POST /webhooks/drift HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 10737418240\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = [0u8; 12];
    // A bound on the wait, not a timing assertion: the old gateway never answered at all.
    tokio::time::timeout(std::time::Duration::from_secs(20), s.read_exact(&mut head))
        .await
        .expect("an answer without the body")
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_whose_data_does_not_parse_is_kept_counted_listed_and_replayable() {
    let env = env(bridge_store::Backend::Sqlite, 2).await.unwrap();
    let running = driftbridge::serve::start(&env.config, false).await.unwrap();
    let org = env.sim.state.default_org().0;
    // A known type whose data has a shape this release cannot read.
    let resp = reqwest::Client::new()
        .post(format!("http://{}/webhooks/drift", running.addr))
        .json(
            &json!({"type": "new_message", "orgId": org, "token": VERIFY,
            "data": {"id": "not-a-number", "conversationId": 2, "createdAt": 3,
                     "author": {"type": "contact", "id": 4}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = resp.json::<Value>().await.unwrap()["event_id"]
        .as_i64()
        .expect("stored");
    let store = running.queue.store().clone();
    assert_eq!(count(&store, "SELECT COUNT(*) FROM jobs").await, 0);
    assert!(
        running
            .metrics
            .render(&[])
            .contains("driftbridge_webhook_events_malformed_total{type=\"new_message\"} 1")
    );
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_driftbridge"))
            .args(args)
            .args(["--database-url", &env.db.url])
            .env("DRIFTBRIDGE_DRIFT__TOKEN", env.sim.token())
            .env("DRIFTBRIDGE_DRIFT__BASE_URL", env.sim.base_url())
            .output()
            .unwrap()
    };
    let out = cli(&["events", "malformed"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        listed.contains(&format!("event {id}")) && listed.contains("new_message"),
        "{listed}"
    );
    assert!(
        listed.contains("is not a numeric id"),
        "the parser's words: {listed}"
    );
    let out = cli(&["events", "malformed", "--json"]);
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], id);
    assert!(
        rows[0]["error"]
            .as_str()
            .unwrap()
            .contains("is not a numeric id")
    );
    // Still unreadable: replay says so and it stays listed.
    let out = cli(&["replay", "--event", &id.to_string()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not parse"));
    // A release that reads it (here: the stored data in the shape this one reads) replays it.
    bridge_store::sqlx::query(
        "UPDATE events SET payload = REPLACE(payload, '\"not-a-number\"', '99') WHERE id = $1",
    )
    .bind(id)
    .execute(store.pool())
    .await
    .unwrap();
    let out = cli(&["replay", "--event", &id.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(count(&store, "SELECT COUNT(*) FROM jobs").await, 1);
    let out = cli(&["events", "malformed"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no malformed events"));
    running.stop().await;
}

/// Reads until the server closes the connection (or `limit` passes: then `None`).
async fn until_closed(
    s: &mut tokio::net::TcpStream,
    limit: std::time::Duration,
) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(limit, read).await.ok()?;
    Some(got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_slow_and_idle_clients_are_closed_and_a_slow_body_gets_408() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let mut env = env(bridge_store::Backend::Sqlite, 1).await.unwrap();
    env.config.server.header_read_timeout_secs = 1;
    env.config.server.body_read_timeout_secs = 1;
    let running = driftbridge::serve::start(&env.config, false).await.unwrap();
    // Bounds on the waits, not timing assertions: before these limits, all four stayed open
    // for as long as the client liked.
    let bound = std::time::Duration::from_secs(15);
    // Connects and sends nothing.
    let mut silent = TcpStream::connect(running.addr).await.unwrap();
    // Sends its request line and then nothing more of its headers.
    let mut slow = TcpStream::connect(running.addr).await.unwrap();
    slow.write_all(b"POST /webhooks/drift HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A keep-alive connection that goes idle after one request.
    let mut idle = TcpStream::connect(running.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Headers complete, then 10 of 100 body bytes.
    let mut body = TcpStream::connect(running.addr).await.unwrap();
    body.write_all(
        b"POST /webhooks/drift HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"type\": \"",
    )
    .await
    .unwrap();
    assert!(
        until_closed(&mut silent, bound).await.is_some(),
        "a silent client stays open"
    );
    assert!(
        until_closed(&mut slow, bound).await.is_some(),
        "a slow header stays open"
    );
    let answered = until_closed(&mut idle, bound)
        .await
        .expect("an idle connection stays open");
    assert!(
        answered.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answered)
    );
    let answered = until_closed(&mut body, bound)
        .await
        .expect("a slow body stays open");
    assert!(
        answered.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&answered)
    );
    // Nothing was stored from the slow body.
    assert_eq!(
        count(running.queue.store(), "SELECT COUNT(*) FROM events").await,
        0
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_idle_and_slow_clients_make_room_so_healthz_and_webhooks_are_answered()
 {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let mut env = env(bridge_store::Backend::Sqlite, 1).await.unwrap();
    // Long enough that only closing idle connections at the cap can explain an answer below.
    env.config.server.header_read_timeout_secs = 120;
    env.config.server.max_connections = 20;
    let running = driftbridge::serve::start(&env.config, false).await.unwrap();
    // Ten times the cap: clients that connect and say nothing, and some that dribble headers.
    let mut held = Vec::new();
    for i in 0..200 {
        let mut s = TcpStream::connect(running.addr).await.unwrap();
        if i % 4 == 0 {
            s.write_all(b"POST /webhooks/drift HT").await.unwrap();
        }
        held.push(s);
    }
    let mut health = TcpStream::connect(running.addr).await.unwrap();
    health
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answered = until_closed(&mut health, std::time::Duration::from_secs(20))
        .await
        .expect("healthz answered while the idle clients are held");
    assert!(
        answered.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answered)
    );
    let id = crate::helpers::conversation_ids(&env.sim)[0];
    let org = env.sim.state.default_org();
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();
    assert_eq!(
        post(&http, running.addr, &push(org, id, 1)).await.unwrap(),
        200
    );
    // The oldest idle clients were the ones closed.
    let mut closed = 0;
    for s in held.iter_mut().take(50) {
        if until_closed(s, std::time::Duration::from_millis(200))
            .await
            .is_some()
        {
            closed += 1;
        }
    }
    assert_eq!(closed, 50, "the oldest idle connections were closed");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_claiming_another_org_never_borrows_a_token_and_ends_as_a_refusal() {
    let env = env(bridge_store::Backend::Sqlite, 5).await.unwrap();
    let org = env.sim.state.default_org();
    let id = crate::helpers::conversation_ids(&env.sim)[0];
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    let http = reqwest::Client::new();
    // drift.token belongs to `org`; this push claims org 999 for one of its conversations.
    let stranger = drift_types::OrgId(999);
    assert_eq!(
        post(&http, running.addr, &push(stranger, id, 1))
            .await
            .unwrap(),
        200
    );
    let store = running.queue.store().clone();
    drained(&store, std::time::Duration::from_secs(20)).await;
    let errors: Vec<String> = bridge_store::sqlx::query_scalar(
        "SELECT last_error FROM jobs WHERE org_id = 999 AND state = 'dead'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(errors.len(), 1, "the job ends as a refusal");
    assert!(
        errors[0].contains("org 999 is not served here")
            && errors[0].contains(&format!("drift.token belongs to org {org}")),
        "{errors:?}"
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM conversations WHERE org_id = 999"
        )
        .await,
        0,
        "nothing was fetched for or stored under the stranger"
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM events WHERE org_id = 999").await,
        1
    );
    assert!(
        running
            .metrics
            .render(&[])
            .contains("driftbridge_jobs_refused_total{job=\"sync_conversation\"} 1")
    );
    // The token's own org is served as before.
    assert_eq!(
        post(&http, running.addr, &push(org, id, 2)).await.unwrap(),
        200
    );
    drained(&store, std::time::Duration::from_secs(20)).await;
    let own: i64 =
        bridge_store::sqlx::query_scalar("SELECT COUNT(*) FROM conversations WHERE org_id = $1")
            .bind(org.0)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(own, 1);
    running.stop().await;
    // The CLI follows the same rule.
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftbridge"))
        .args(["export", "--tables", "users", "--org", "999", "--to"])
        .arg(format!("jsonl:{}", dir.path().display()))
        .args(["--database-url", &env.db.url])
        .env("DRIFTBRIDGE_DRIFT__BASE_URL", env.sim.base_url())
        .env("DRIFTBRIDGE_DRIFT__TOKEN", env.sim.token())
        .env("DRIFTBRIDGE_DRIFT__RATE_LIMIT_PER_MINUTE", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("org 999 is not served here"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_of_a_conversation_not_yet_stored_works_out_the_org_from_the_token() {
    let env = env(bridge_store::Backend::Sqlite, 3).await.unwrap();
    // The database exists (serve made it) but holds no conversation yet.
    let running = driftbridge::serve::start(&env.config, false).await.unwrap();
    running.stop().await;
    let id = crate::helpers::conversation_ids(&env.sim)[0];
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftbridge"))
        .args(["replay", "--conversation", &id.0.to_string()])
        .args(["--database-url", &env.db.url])
        .env("DRIFTBRIDGE_DRIFT__BASE_URL", env.sim.base_url())
        .env("DRIFTBRIDGE_DRIFT__TOKEN", env.sim.token())
        .env(
            "DRIFTBRIDGE_MASTER_KEY",
            env.config.secrets.master_key.as_ref().unwrap().expose(),
        )
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let org = env.sim.state.default_org();
    assert!(said.contains(&format!("of org {org}")), "{said}");
}
