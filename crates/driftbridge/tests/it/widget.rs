//! The widget bridge end to end: a real headless Chromium (through chromedriver) visits the
//! simulator's site with UTM parameters, whose fake Drift widget plays a visit with
//! driftbridge's `/widget.js`; `serve` stores each event once, derives the first touch, and
//! HubSpot (simulated) gets it on the contact. And the refusals: forged and expired tokens,
//! wrong origins, oversized batches and a flood from one address, with nothing stored, while
//! a valid site keeps working.

use std::time::Duration;

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
