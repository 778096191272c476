//! The widget bridge end to end: a real headless Chromium (through chromedriver) visits the
//! simulator's site with UTM parameters, whose fake Drift widget plays a visit with
//! driftbridge's `/widget.js`; `serve` stores each event once, derives the first touch, and
//! HubSpot (simulated) gets it on the contact. And the refusals: forged and expired tokens,
//! wrong origins, oversized batches and a flood from one address, with nothing stored, while
//! a valid site keeps working.

use std::time::Duration;

use bridge_store::testing::BACKENDS;
use bridge_store::{Backend, Store};
use drift_types::Secret;
use fantoccini::Locator;
use serde_json::{Value, json};

use crate::browser::{chromedriver, session};
use crate::crm::env_with_sinks;
use crate::helpers::*;

const SITE: &str = "acme";

/// HubSpot with the attribution properties mapped, and one signed widget site on the
/// simulator's origin.
fn toml(sim: &drift_sim::SimHandle, _: u16) -> String {
    format!(
        r#"
[outbound]
allow = ["127.0.0.1:{port}"]
[sinks.hubspot]
kind = "hubspot"
base_url = "{base}/hubspot"
token = "pat-na1-driftbridge-sim"
search_lag_secs = 0
[sinks.hubspot.fields]
drift_utm_source = "{{{{attribution.utm_source}}}}"
drift_utm_campaign = "{{{{attribution.utm_campaign}}}}"
drift_landing_page = "{{{{attribution.landing_page}}}}"

[[widget.sites]]
key = "{SITE}"
org_id = {org}
origins = ["{base}"]
mode = "signed"
"#,
        port = sim.addr.port(),
        base = sim.base_url(),
        org = sim.state.default_org().0,
    )
}

async fn rows(store: &Store, sql: &'static str) -> Vec<(String, Option<i64>, String)> {
    bridge_store::sqlx::query_as(sql)
        .fetch_all(store.pool())
        .await
        .expect(sql)
}

#[tokio::test]
async fn a_visit_in_chromium_is_stored_once_and_its_first_touch_reaches_hubspot_and_the_facts() {
    let Some(driver) = chromedriver() else {
        return;
    };
    let Some(ce) = env_with_sinks(Backend::Sqlite, 5, toml).await else {
        return;
    };
    let env = &ce.env;
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    let store = running.queue.store().clone();
    let secrets = driftbridge::serve::site_secrets_on(store.clone(), env.config.keyring().unwrap());
    let secret = secrets.rotate(SITE).await.unwrap();
    env.sim.state.webhooks.configure(|w| {
        w.url = Some(format!("http://{}/webhooks/drift", running.addr));
        w.verification_token = Secret::new(VERIFY);
    });
    let sim = env.sim.base_url();
    let http = reqwest::Client::new();
    let setup = http
        .put(format!("{sim}/sim/site"))
        .json(
            &json!({"driftbridge_url": format!("http://{}", running.addr), "site": SITE,
            "secret": secret.expose(), "step_ms": 300}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(setup.status(), 200);

    // The script is small, and loads async after the Drift embed.
    let js = http
        .get(format!("http://{}/widget.js", running.addr))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(js.headers()["content-encoding"], "gzip");
    let gz = js.bytes().await.unwrap();
    assert!(
        gz.len() < 5 * 1024,
        "widget.js is {} bytes gzipped",
        gz.len()
    );

    let email = "ada.widget@example.org";
    let c = session(&driver).await;
    c.goto(&format!(
        "{sim}/sim/site?utm_source=newsletter&utm_medium=email&utm_campaign=spring&email={email}"
    ))
    .await
    .unwrap();
    let async_attr = c
        .execute(
            "return document.querySelector('script[src$=\"/widget.js\"]').async",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(async_attr, json!(true), "the script tag loads async");
    let mut conversation = 0;
    for _ in 0..300 {
        let v = c
            .execute("return document.body.dataset.conversation || ''", vec![])
            .await
            .unwrap();
        if let Some(id) = v.as_str().and_then(|s| s.parse().ok()) {
            conversation = id;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = c
        .find(Locator::Id("status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(conversation > 0, "the visit did not finish: {status}");

    // Twelve widget events, each stored once.
    wait_until("the widget events", Duration::from_secs(30), || async {
        count(&store, "SELECT COUNT(*) FROM widget_events").await >= 12
    })
    .await;
    // While events flowed the tab sent at most one request per 2 s.
    let starts = c
        .execute(
            "return performance.getEntriesByType('resource')
               .filter(function (e) { return e.name.endsWith('/widget/events'); })
               .map(function (e) { return e.startTime; })",
            vec![],
        )
        .await
        .unwrap();
    let starts: Vec<f64> = serde_json::from_value(starts).unwrap();
    assert!(
        starts.len() >= 2,
        "the visit spans several batches: {starts:?}"
    );
    for w in starts.windows(2) {
        assert!(
            w[1] - w[0] >= 1990.0,
            "two requests {} ms apart: {starts:?}",
            w[1] - w[0]
        );
    }
    c.close().await.unwrap();
    let types: Vec<(String, Option<i64>, String)> = rows(
        &store,
        "SELECT event_type, conversation_id, data FROM widget_events ORDER BY occurred_at",
    )
    .await;
    let names: Vec<&str> = types.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "ready",
            "chatOpen",
            "startConversation",
            "conversation:playbookFired",
            "conversation:firstInteraction",
            "message:sent",
            "message",
            "emailCapture",
            "scheduling:requestMeeting",
            "scheduling:meetingBooked",
            "gdprClicked",
            "chatClose"
        ]
    );
    let capture = types.iter().find(|t| t.0 == "emailCapture").unwrap();
    assert_eq!(capture.1, Some(conversation), "linked to its conversation");
    // No email left the browser: none in any stored widget column.
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM widget_events WHERE data LIKE '%@%' OR page_url LIKE '%ada.widget%' \
             OR landing_page LIKE '%ada.widget%' OR referrer LIKE '%@%'"
        )
        .await
        + count(&store, "SELECT COUNT(*) FROM widget_events WHERE data LIKE '%ada.widget%'").await,
        0,
        "an email reached the widget events"
    );

    // The push arrives from the simulator; HubSpot's contact carries the first touch.
    wait_until(
        "HubSpot's contact with the UTM source",
        Duration::from_secs(60),
        || async {
            hubspot_contact(&env.sim, email).is_some_and(|f| f["drift_utm_source"] == "newsletter")
        },
    )
    .await;
    let f = hubspot_contact(&env.sim, email).unwrap();
    assert_eq!(f["drift_utm_campaign"], "spring");
    assert!(
        f["drift_landing_page"]
            .as_str()
            .unwrap()
            .contains("/sim/site?utm_source=newsletter")
    );
    drained(&store, Duration::from_secs(30)).await;
    let facts: (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ) = bridge_store::sqlx::query_as(
        "SELECT utm_source, utm_medium, utm_campaign, landing_page FROM conversation_facts \
             WHERE conversation_id = $1",
    )
    .bind(conversation)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(facts.0.as_deref(), Some("newsletter"));
    assert_eq!(facts.1.as_deref(), Some("email"));
    assert_eq!(facts.2.as_deref(), Some("spring"));
    assert!(facts.3.unwrap().contains("utm_campaign=spring"));
    let contact: Option<i64> = bridge_store::sqlx::query_scalar(
        "SELECT contact_id FROM conversation_attribution WHERE conversation_id = $1",
    )
    .bind(conversation)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(
        contact.is_some(),
        "the attribution is linked to the synced contact"
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM widget_consents WHERE accepted = 1"
        )
        .await,
        1
    );

    // The widget tables go to a file export too.
    let dir = tempfile::tempdir().unwrap();
    let args = driftbridge::export_cmd::ExportArgs {
        to: Some(format!("jsonl:{}", dir.path().display())),
        tables: vec!["widget".into()],
        contacts_from: None,
        org: Some(org(&env.sim).0),
        concurrency: 4,
        meetings_since: None,
        restart: true,
        attachments: None,
        json: true,
        overlap_secs: 3600,
    };
    driftbridge::export_cmd::run(&env.config, args, bridge_export::Mode::Full)
        .await
        .unwrap();
    let lines = |name: &str| -> usize {
        std::fs::read_dir(dir.path().join(name))
            .map(|parts| {
                parts
                    .filter_map(Result::ok)
                    .map(|p| {
                        std::fs::read_to_string(p.path())
                            .unwrap_or_default()
                            .lines()
                            .count()
                    })
                    .sum()
            })
            .unwrap_or(0)
    };
    assert_eq!(lines("widget_events"), 12);
    assert_eq!(lines("conversation_attribution"), 1);
    assert_eq!(lines("widget_consents"), 1);

    // Erasing the person erases the visitor's widget events, consent and attribution.
    let ev =
        drift_types::WebhookEvent::GdprDeleteRequested(drift_types::webhook::GdprDeleteRequested {
            email: email.to_uppercase(),
            requested_at: Some(drift_types::EpochMillis(drift_types::now_ms())),
        });
    let body = signed(&ev, org(&env.sim));
    assert_eq!(post(&http, running.addr, &body).await.unwrap(), 200);
    wait_until("the erasure", Duration::from_secs(30), || async {
        count(&store, "SELECT COUNT(*) FROM erasures").await == 1
    })
    .await;
    drained(&store, Duration::from_secs(30)).await;
    for t in [
        "SELECT COUNT(*) FROM widget_events",
        "SELECT COUNT(*) FROM widget_consents",
        "SELECT COUNT(*) FROM conversation_attribution",
    ] {
        assert_eq!(count(&store, t).await, 0, "{t} after the erasure");
    }
    running.stop().await;
}

/// The fields of the HubSpot contact with `email`.
fn hubspot_contact(sim: &drift_sim::SimHandle, email: &str) -> Option<Value> {
    let dump = sim.state.crm.dump();
    dump.pointer("/hubspot/contacts")?
        .as_array()?
        .iter()
        .find(|c| c["fields"]["email"] == email)
        .map(|c| c["fields"].clone())
}

const SHOP: &str = "http://shop.example";
const BLOG: &str = "http://blog.example";

fn intake_toml(org: i64) -> String {
    format!(
        r#"
[widget]
per_ip_per_sec = 20
per_ip_burst = 40
trusted_proxies = ["127.0.0.1"]
[[widget.sites]]
key = "shop"
org_id = {org}
origins = ["{SHOP}"]
mode = "signed"
[[widget.sites]]
key = "blog"
org_id = {org}
origins = ["{BLOG}"]
mode = "public"
[[widget.sites]]
key = "forms"
org_id = {org}
origins = ["{BLOG}"]
mode = "public"
collect_contact = true
"#
    )
}

/// A store and `serve` (workers running) with the sites of [`intake_toml`].
async fn intake_env(backend: Backend) -> Option<(Env, driftbridge::serve::Running)> {
    let mut env = env(backend, 3).await?;
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(file.path(), intake_toml(org(&env.sim).0)).unwrap();
    env.config = config_with(&env.db.url, &env.sim, Some(file.path()));
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    Some((env, running))
}

fn event(id: &str, conversation: i64) -> Value {
    json!({"id": id, "type": "message:sent", "ts": drift_types::now_ms(),
        "conversationId": conversation, "page": {"url": "http://shop.example/pricing"},
        "touch": {"utm_source": "ads", "landing_page": "http://shop.example/?utm_source=ads"},
        "data": {"conversationId": conversation, "inboxId": 1}})
}

struct Poster {
    http: reqwest::Client,
    url: String,
}

impl Poster {
    async fn send(
        &self,
        body: &Value,
        origin: Option<&str>,
        ip: &str,
    ) -> (u16, Value, Option<String>) {
        let mut r = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-forwarded-for", ip)
            .body(body.to_string());
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let retry = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, resp.json().await.unwrap_or(Value::Null), retry)
    }
}

/// Runs a token recipe of docs/WIDGET.md (the fenced block in `lang`) with `program`,
/// appending a line that prints a token.
fn doc_token(lang: &str, program: &str, call: &str) -> Option<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/WIDGET.md"))
        .unwrap();
    let start = doc.find(&format!("```{lang}\n"))? + lang.len() + 4;
    let code = &doc[start..start + doc[start..].find("```")?];
    let out = std::process::Command::new(program)
        .arg(if program.contains("node") { "-e" } else { "-c" })
        .arg(format!("{code}\n{call}"))
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

#[tokio::test]
async fn forged_expired_wrong_origin_oversized_and_flooding_batches_are_refused_and_nothing_is_stored()
 {
    let Some((env, running)) = intake_env(Backend::Sqlite).await else {
        return;
    };
    let store = running.queue.store().clone();
    let secrets = driftbridge::serve::site_secrets_on(store.clone(), env.config.keyring().unwrap());
    let secret = secrets.rotate("shop").await.unwrap();
    let p = Poster {
        http: reqwest::Client::new(),
        url: format!("http://{}/widget/events", running.addr),
    };
    let stored = || count(&store, "SELECT COUNT(*) FROM widget_events");
    let exp = drift_types::now_ms() / 1000 + 600;

    // The docs' Python recipe mints a token the intake takes, and a re-sent batch is stored once.
    let python = std::env::var("DRIFTBRIDGE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let token = doc_token(
        "python",
        &python,
        &format!("print(widget_token('shop', 'v-py', '{}'))", secret.expose()),
    )
    .expect("python runs the docs' recipe");
    let batch = json!({"site": "shop", "visitor": "ignored", "session": "s1", "token": token,
        "events": [event("e1", 41)]});
    let (s, v, _) = p.send(&batch, Some(SHOP), "198.51.100.1").await;
    assert_eq!((s, &v), (200, &json!({"accepted": 1, "duplicates": 0})));
    let (s, v, _) = p.send(&batch, Some(SHOP), "198.51.100.1").await;
    assert_eq!((s, &v), (200, &json!({"accepted": 0, "duplicates": 1})));
    let visitor: String = bridge_store::sqlx::query_scalar("SELECT visitor_id FROM widget_events")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(visitor, "v-py", "a signed site's visitor is the token's");
    if let Some(t) = doc_token(
        "js",
        "node",
        &format!(
            "console.log(widgetToken('shop', 'v-node', '{}'))",
            secret.expose()
        ),
    ) {
        let b = json!({"site": "shop", "visitor": "x", "session": "s1", "token": t,
            "events": [event("e-node", 41)]});
        assert_eq!(
            p.send(&b, Some(SHOP), "198.51.100.1").await.0,
            200,
            "the Node recipe"
        );
    } else {
        eprintln!("no node: the Node recipe was not run");
    }
    // Emails are dropped unless the site opted in.
    let capture = |id: &str| {
        let mut e = event(id, 44);
        e["type"] = json!("emailCapture");
        e["data"] = json!({"data": {"email": "grace@example.org", "conversationId": 44}});
        e
    };
    for (site, id) in [("blog", "cap-1"), ("forms", "cap-2")] {
        let b = json!({"site": site, "visitor": "v", "session": "s", "events": [capture(id)]});
        assert_eq!(
            p.send(&b, Some(BLOG), "198.51.100.4").await.0,
            200,
            "{site}"
        );
    }
    let kept: Vec<(String, String)> = bridge_store::sqlx::query_as(
        "SELECT site, data FROM widget_events WHERE event_type = 'emailCapture' ORDER BY site",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(kept.len(), 2);
    assert!(
        !kept[0].1.contains("grace@"),
        "blog dropped it: {}",
        kept[0].1
    );
    assert!(
        kept[1].1.contains("grace@example.org"),
        "forms opted in: {}",
        kept[1].1
    );
    let before = stored().await;

    // Refusals, each with its status and nothing stored.
    let good = bridge_core::widget::mint(&secret, "shop", "v1", exp);
    let with = |token: Option<&str>, site: &str, events: Vec<Value>| json!({"site": site, "visitor": "v1", "session": "s1", "token": token, "events": events});
    let forged = good.replacen("v1.v1.", "v1.v2.", 1);
    let expired = bridge_core::widget::mint(&secret, "shop", "v1", exp - 3600);
    let other_secret = bridge_core::widget::mint(&Secret::new("guess"), "shop", "v1", exp);
    let big = json!({"blob": "x".repeat(70_000)});
    let mut huge = event("e-big", 41);
    huge["data"] = big;
    let many: Vec<Value> = (0..51).map(|i| event(&format!("m{i}"), 41)).collect();
    let mut stale = event("e-stale", 41);
    stale["ts"] = json!(drift_types::now_ms() - 3 * 86_400_000);
    for (what, body, origin, want, code) in [
        (
            "forged",
            with(Some(&forged), "shop", vec![event("f1", 41)]),
            Some(SHOP),
            401,
            "invalid_token",
        ),
        (
            "wrong secret",
            with(Some(&other_secret), "shop", vec![event("f2", 41)]),
            Some(SHOP),
            401,
            "invalid_token",
        ),
        (
            "expired",
            with(Some(&expired), "shop", vec![event("f3", 41)]),
            Some(SHOP),
            401,
            "invalid_token",
        ),
        (
            "no token",
            with(None, "shop", vec![event("f4", 41)]),
            Some(SHOP),
            401,
            "invalid_token",
        ),
        (
            "wrong origin",
            with(Some(&good), "shop", vec![event("f5", 41)]),
            Some(BLOG),
            403,
            "origin_not_allowed",
        ),
        (
            "public, no origin",
            with(None, "blog", vec![event("f6", 41)]),
            None,
            403,
            "origin_not_allowed",
        ),
        (
            "unknown site",
            with(None, "nope", vec![event("f7", 41)]),
            Some(SHOP),
            403,
            "unknown_site",
        ),
        (
            "oversized",
            with(Some(&good), "shop", vec![huge]),
            Some(SHOP),
            413,
            "payload_too_large",
        ),
        (
            "too many",
            with(Some(&good), "shop", many),
            Some(SHOP),
            413,
            "too_many_events",
        ),
        (
            "stale",
            with(Some(&good), "shop", vec![stale]),
            Some(SHOP),
            400,
            "invalid_event",
        ),
    ] {
        let (s, v, _) = p.send(&body, origin, "198.51.100.2").await;
        assert_eq!(s, want, "{what}: {v}");
        assert_eq!(v["error"]["code"], code, "{what}: {v}");
    }
    let (_, v, _) = p
        .send(
            &with(
                Some(&good),
                "shop",
                vec![{
                    let mut e = event("e-stale", 41);
                    e["ts"] = json!(1);
                    e
                }],
            ),
            Some(SHOP),
            "198.51.100.2",
        )
        .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("events[0].ts"),
        "{v}"
    );
    assert_eq!(stored().await, before, "a refused batch stored something");

    // CORS preflights: answered for a listed origin only.
    let pre = |origin: &'static str| {
        p.http
            .request(reqwest::Method::OPTIONS, &p.url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let ok = pre(BLOG).await.unwrap();
    assert_eq!(ok.status(), 204);
    assert_eq!(ok.headers()["access-control-allow-origin"], BLOG);
    let no = pre("http://evil.example").await.unwrap();
    assert_eq!(no.status(), 403);
    assert!(no.headers().get("access-control-allow-origin").is_none());

    // 1,000 events in a second from one address: most are refused, and what is refused is not
    // stored; meanwhile the sites keep working for everyone else.
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..100 {
        let events: Vec<Value> = (0..10)
            .map(|j| event(&format!("flood-{i}-{j}"), 42))
            .collect();
        let b = json!({"site": "blog", "visitor": "flooder", "session": "s9", "events": events});
        let (s, v, retry) = p.send(&b, Some(BLOG), "203.0.113.9").await;
        match s {
            200 => accepted += v["accepted"].as_i64().unwrap(),
            429 => {
                refused += 1;
                assert!(retry.is_some(), "a 429 says when to retry");
            }
            other => panic!("flood answered {other}: {v}"),
        }
    }
    assert!(
        refused >= 80,
        "only {refused} of 100 flooding batches refused"
    );
    let flooded: i64 = bridge_store::sqlx::query_scalar(
        "SELECT COUNT(*) FROM widget_events WHERE visitor_id = 'flooder'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(flooded, accepted, "refused events were stored");
    let b = with(Some(&good), "shop", vec![event("after-flood", 41)]);
    assert_eq!(
        p.send(&b, Some(SHOP), "198.51.100.1").await.0,
        200,
        "the signed site"
    );
    let b = json!({"site": "blog", "visitor": "reader", "session": "s2",
        "events": [event("reader-1", 43)]});
    assert_eq!(
        p.send(&b, Some(BLOG), "198.51.100.3").await.0,
        200,
        "the public site"
    );
    running.stop().await;
}

#[tokio::test]
async fn batches_that_arrive_together_share_one_commit_and_each_is_answered_for_its_own_events() {
    let Some((_env, running)) = intake_env(Backend::Sqlite).await else {
        return;
    };
    let store = running.queue.store().clone();
    let p = std::sync::Arc::new(Poster {
        http: reqwest::Client::new(),
        url: format!("http://{}/widget/events", running.addr),
    });
    // Eight browsers post at once while SQLite's one connection is busy; the last two send
    // the same three events (a batch re-sent from a second tab).
    let busy = store.begin().await.unwrap();
    let posts: Vec<_> = (1..=8)
        .map(|i: i64| {
            let p = p.clone();
            tokio::spawn(async move {
                let n = i.min(7);
                let events: Vec<Value> = (0..3)
                    .map(|j| event(&format!("together-{n}-{j}"), 500 + n))
                    .collect();
                let b = json!({"site": "blog", "visitor": format!("v{n}"), "session": "s",
                    "events": events});
                p.send(&b, Some(BLOG), &format!("198.51.100.{}", 10 + i))
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(busy);
    let mut answers = Vec::new();
    for post in posts {
        let (status, v, _) = post.await.unwrap();
        assert_eq!(status, 200, "{v}");
        answers.push((
            v["accepted"].as_i64().unwrap(),
            v["duplicates"].as_i64().unwrap(),
        ));
    }
    assert_eq!(
        answers[..6],
        [(3, 0); 6],
        "each batch is answered for its own events"
    );
    let mut resent = answers[6..].to_vec();
    resent.sort_unstable();
    assert_eq!(resent, [(0, 3), (3, 0)], "the re-sent batch is stored once");
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM widget_events WHERE event_id LIKE 'together-%'"
        )
        .await,
        21
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM jobs WHERE name = 'derive_attribution'"
        )
        .await,
        7,
        "one attribution job per conversation"
    );
    let metrics = running.metrics.render(&[]);
    let commits: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("driftbridge_widget_commit_seconds_count "))
        .expect("the widget commits are counted")
        .parse()
        .unwrap();
    assert!(
        (1..=3).contains(&commits),
        "{commits} commits stored 8 batches that arrived together"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_nul_anywhere_in_a_batch_is_stored_as_u_fffd_and_fails_no_batch_committed_with_it() {
    for backend in BACKENDS {
        let Some((_env, running)) = intake_env(*backend).await else {
            continue;
        };
        let store = running.queue.store().clone();
        let p = std::sync::Arc::new(Poster {
            http: reqwest::Client::new(),
            url: format!("http://{}/widget/events", running.addr),
        });
        // The committer waits on a lock while both batches arrive, so they share a commit.
        let mut lock = store.begin().await.unwrap();
        if *backend == Backend::Postgres {
            bridge_store::sqlx::query("LOCK TABLE widget_events IN ACCESS EXCLUSIVE MODE")
                .execute(&mut *lock)
                .await
                .unwrap();
        }
        // Ids are refused unless plain; the free text (pages, first touch, payload) is kept.
        let mut hostile = event("nul-id", 41);
        hostile["page"]["url"] = json!("http://shop.example/a\u{0}b");
        hostile["touch"]["utm_campaign"] = json!("spring\u{0}");
        hostile["data"] = json!({"k\u{0}": "v\u{0}", "accepted": true});
        hostile["type"] = json!("gdprClicked");
        let batches = [
            json!({"site": "blog", "visitor": "v1", "session": "s", "events": [hostile]}),
            json!({"site": "blog", "visitor": "v2", "session": "s", "events": [event("plain", 42)]}),
        ];
        let posts: Vec<_> = batches
            .into_iter()
            .enumerate()
            .map(|(i, b)| {
                let p = p.clone();
                tokio::spawn(async move {
                    p.send(&b, Some(BLOG), &format!("198.51.100.{}", 30 + i))
                        .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(lock);
        for post in posts {
            let (status, v, _) = post.await.unwrap();
            assert_eq!(
                (status, &v),
                (200, &json!({"accepted": 1, "duplicates": 0})),
                "{backend:?}"
            );
        }
        let rows: Vec<(String, Option<String>, Option<String>, String)> =
            bridge_store::sqlx::query_as(
                "SELECT event_id, page_url, utm_campaign, CAST(data AS TEXT) FROM widget_events \
                 ORDER BY event_id",
            )
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "{backend:?}: {rows:?}");
        let (id, url, campaign, data) = &rows[0];
        assert_eq!(
            (id.as_str(), url.as_deref(), campaign.as_deref()),
            (
                "nul-id",
                Some("http://shop.example/a\u{fffd}b"),
                Some("spring\u{fffd}")
            ),
            "{backend:?}"
        );
        let data: Value = serde_json::from_str(data).unwrap();
        assert_eq!(data["k\u{fffd}"], "v\u{fffd}", "{backend:?}: {data}");
        assert_eq!(rows[1].0, "plain", "{backend:?}");
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM widget_consents").await,
            1,
            "{backend:?}: the consent of the batch with NULs"
        );
        running.stop().await;
    }
}

#[tokio::test]
async fn airbyte_reads_the_widget_streams_from_the_driftbridge_database() {
    let Some(env) = env(Backend::Sqlite, 3).await else {
        return;
    };
    let store = Store::connect(&env.db.url).await.unwrap();
    let o = org(&env.sim).0;
    let mut tx = store.begin().await.unwrap();
    let events: Vec<bridge_store::widget::NewWidgetEvent> = (0..3)
        .map(|i| bridge_store::widget::NewWidgetEvent {
            site: "www".into(),
            event_id: format!("e{i}"),
            visitor_id: "v".into(),
            session_id: "s".into(),
            event_type: "message:sent".into(),
            occurred_at: 1_000 + i,
            conversation_id: Some(5),
            page_url: None,
            page_path: None,
            referrer: None,
            touch: bridge_store::widget::Touch {
                utm_source: Some("ads".into()),
                ..Default::default()
            },
            data: "{}".into(),
        })
        .collect();
    bridge_store::widget::insert(&mut tx, o, &events, 2_000)
        .await
        .unwrap();
    bridge_store::widget::derive_attribution(&mut tx, o, 5)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    store.close().await;

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = json!({"access_token": env.sim.token(), "base_url": env.sim.base_url(),
        "org_id": o, "rate_limit_per_minute": 0, "driftbridge_database_url": env.db.url});
    std::fs::write(d.join("config.json"), config.to_string()).unwrap();
    let discovered = crate::airbyte::lines(&crate::airbyte::airbyte(
        &["discover", "--config", "config.json"],
        d,
    ));
    let streams: Vec<Value> = discovered[0]["catalog"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with("widget_") || n == "conversation_attribution"))
        .map(|s| json!({"stream": s, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}))
        .collect();
    assert_eq!(streams.len(), 3, "the catalog has the widget streams");
    std::fs::write(
        d.join("catalog.json"),
        json!({"streams": streams}).to_string(),
    )
    .unwrap();
    let out = crate::airbyte::airbyte(
        &[
            "read",
            "--config",
            "config.json",
            "--catalog",
            "catalog.json",
        ],
        d,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let msgs = crate::airbyte::lines(&out);
    let records = |stream: &str| {
        msgs.iter()
            .filter(|m| m["type"] == "RECORD" && m["record"]["stream"] == stream)
            .count()
    };
    assert_eq!(records("widget_events"), 3);
    assert_eq!(records("conversation_attribution"), 1);
    let a = msgs
        .iter()
        .find(|m| m["record"]["stream"] == "conversation_attribution")
        .unwrap();
    assert_eq!(a["record"]["data"]["utm_source"], "ads");
}

/// A browser re-sends a batch to a second process on the same PostgreSQL while the first is
/// storing it, the events in the other order. Each insert waits for the other transaction's
/// uncommitted row; stored in arrival order they waited on each other, a deadlock PostgreSQL
/// broke by failing one commit (the browser got a 5xx). Stored in key order, both answer 200
/// and each event is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_batch_sent_to_two_processes_in_opposite_orders_is_stored_once_by_both() {
    let Some((env, first)) = intake_env(Backend::Postgres).await else {
        return;
    };
    let second = driftbridge::serve::start(&env.config, true).await.unwrap();
    let store = first.queue.store().clone();
    let poster = |addr: std::net::SocketAddr| Poster {
        http: reqwest::Client::new(),
        url: format!("http://{addr}/widget/events"),
    };
    let (a, b) = (poster(first.addr), poster(second.addr));
    // Forty events: the sites' per-address burst.
    for round in 0..10 {
        let events: Vec<Value> = (0..40)
            .map(|j| event(&format!("twice-{round}-{j:02}"), 900 + round))
            .collect();
        let mut reversed = events.clone();
        reversed.reverse();
        let batch = |events: Vec<Value>| {
            json!({"site": "blog", "visitor": format!("v{round}"), "session": "s",
                "events": events})
        };
        let (one, two) = (batch(events), batch(reversed));
        let ip = format!("198.51.100.{}", 100 + round);
        let ((s1, v1, _), (s2, v2, _)) =
            tokio::join!(a.send(&one, Some(BLOG), &ip), b.send(&two, Some(BLOG), &ip));
        assert_eq!((s1, s2), (200, 200), "round {round}: {v1} / {v2}");
        assert_eq!(
            v1["accepted"].as_i64().unwrap() + v2["accepted"].as_i64().unwrap(),
            40,
            "round {round}: each event taken once: {v1} / {v2}"
        );
    }
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM widget_events WHERE event_id LIKE 'twice-%'"
        )
        .await,
        400
    );
    second.stop().await;
    first.stop().await;
}
