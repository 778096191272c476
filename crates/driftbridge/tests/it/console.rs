//! The operator's console in a real browser: headless Chromium driven through chromedriver
//! (WebDriver) against `serve` on SQLite with the HubSpot simulator as a sink. Signs in, sees
//! the overview's charts after a burst, finds dead jobs by filter and retries them, replays a
//! conversation, revokes and restores a tenant through the confirmation, and as a viewer sees
//! masked emails and no controls, with forged POSTs refused. Saves a screenshot of each page
//! under `target/console/`. Skips without chromedriver, never under `CI=true`.

use std::time::Duration;

use bridge_store::{Backend, Store};
use drift_sim::crm::{FaultMode, Target};
use drift_types::{ConversationId, Secret};
use fantoccini::{Client, Locator};

use crate::browser::{chromedriver, session};
use crate::crm::{env_with_sinks, hubspot_only, push_all};
use crate::helpers::*;

const ADMIN: &str = "console-admin-token";
const VIEWER: &str = "console-viewer-token";

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn count(c: &Client, css: &str) -> usize {
    c.find_all(Locator::Css(css)).await.unwrap().len()
}

/// Clicks what submits a form or follows a link, and waits for the next page to load (a
/// click returns before the browser navigates).
async fn click(c: &Client, css: &str) {
    let old = c.find(Locator::Css("html")).await.unwrap();
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for _ in 0..200 {
        if old.text().await.is_err() {
            let ready = c
                .execute("return document.readyState", vec![])
                .await
                .unwrap();
            if ready == "complete" {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("clicking {css} did not load a page");
}

async fn sign_in(c: &Client, base: &str, token: &str, name: &str) {
    c.goto(&format!("{base}/admin")).await.unwrap();
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/admin/login")
    );
    c.find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    c.find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys(name)
        .await
        .unwrap();
    click(c, "#sign-in").await;
    assert_eq!(c.current_url().await.unwrap().path(), "/admin");
}

async fn job_state(store: &Store, id: i64) -> String {
    sqlx_state(store, id).await
}

async fn sqlx_state(store: &Store, id: i64) -> String {
    bridge_store::sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_and_a_viewer_use_the_console_in_headless_chromium() {
    let Some(driver) = chromedriver() else {
        return;
    };
    let Some(mut ce) = env_with_sinks(Backend::Sqlite, 12, hubspot_only).await else {
        return;
    };
    let env = &mut ce.env;
    env.config.admin.token = Some(Secret::new(ADMIN));
    env.config.admin.viewer_token = Some(Secret::new(VIEWER));
    env.config.workers.max_attempts = 1;
    let ids: Vec<ConversationId> = conversation_ids(&env.sim);
    let org = org(&env.sim);
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    let store = running.queue.store().clone();
    let base = format!("http://{}", running.addr);

    // A burst that lands, then three pushes while HubSpot is down: three dead letters.
    push_all(running.addr, &env.sim, &ids[..8], 0).await;
    drained(&store, Duration::from_secs(60)).await;
    env.sim.state.crm.set_fault(
        Target::Hubspot,
        FaultMode::Unavailable,
        Duration::from_secs(600),
    );
    push_all(running.addr, &env.sim, &ids[8..11], 100).await;
    drained(&store, Duration::from_secs(60)).await;
    let dead = running
        .queue
        .list(bridge_queue::JobState::Dead, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 3, "{dead:?}");
    env.sim
        .state
        .crm
        .set_fault(Target::Hubspot, FaultMode::Unavailable, Duration::ZERO);
    // A person identified in a chat: the signal writes them into HubSpot before any push.
    let person = {
        let world = env.sim.state.world.lock();
        world
            .org(org)
            .unwrap()
            .contacts
            .values()
            .find(|c| c.attributes.email().is_some())
            .cloned()
            .unwrap()
    };
    let identified = drift_types::WebhookEvent::ContactIdentified(person);
    let body = signed(&identified, org);
    assert_eq!(
        post(&reqwest::Client::new(), running.addr, &body)
            .await
            .unwrap(),
        200
    );
    drained(&store, Duration::from_secs(60)).await;
    // An installed tenant for the revoke and restore.
    let tenants =
        driftbridge::serve::tenants_on(&env.config, store.clone(), env.config.keyring().unwrap())
            .unwrap();
    tenants
        .install(
            org,
            &drift_client::TokenSet {
                access_token: Secret::new(env.sim.token()),
                refresh_token: None,
                expires_at: None,
                org_id: Some(org),
            },
            Some("conversation_read contact_read"),
            Some("console test"),
        )
        .await
        .unwrap();

    let c = session(&driver).await;
    sign_in(&c, &base, ADMIN, "Ops Ana").await;
    assert!(text(&c, "#who").await.contains("Ops Ana (admin"));
    // The overview: non-empty charts and the dead letters.
    let bars = count(&c, "svg#events-hour rect").await;
    assert!(bars >= 1, "events in the last hour are drawn");
    assert!(count(&c, "svg#jobs-hour rect").await >= 1);
    assert!(count(&c, "svg#events-day rect").await >= 1);
    assert_eq!(text(&c, "#tile-dead b").await, "3");
    let sinks = text(&c, "#sinks").await;
    assert!(sinks.contains("hubspot"), "{sinks}");
    assert!(
        sinks.contains("people written by signals") && sinks.lines().any(|l| l.ends_with(" 1")),
        "the identified person is counted: {sinks}"
    );
    shot(&c, "overview").await;

    // Find the dead jobs by filter and retry one.
    c.goto(&format!("{base}/admin/jobs")).await.unwrap();
    c.find(Locator::Css("#f-state option[value='']"))
        .await
        .unwrap();
    c.find(Locator::Css("#f-state"))
        .await
        .unwrap()
        .select_by_value("dead")
        .await
        .unwrap();
    c.find(Locator::Id("f-error"))
        .await
        .unwrap()
        .send_keys("503")
        .await
        .unwrap();
    click(&c, "#filter").await;
    assert_eq!(count(&c, "#jobs tr[id^='job-']").await, 3);
    shot(&c, "jobs").await;
    let first = dead[0].id;
    click(&c, &format!("#job-{first} button.retry")).await;
    assert!(
        text(&c, "#notice")
            .await
            .contains(&format!("job {first} queued again"))
    );
    wait_until("the retried job is done", Duration::from_secs(30), || {
        let store = store.clone();
        async move { job_state(&store, first).await == "done" }
    })
    .await;
    c.goto(&format!("{base}/admin/jobs?state=done"))
        .await
        .unwrap();
    assert_eq!(text(&c, &format!("#job-{first} .state")).await, "done");

    // Replay a delivered conversation: its delivery count rises.
    let conv = ids[0].0;
    c.goto(&format!("{base}/admin/conversations?id={conv}"))
        .await
        .unwrap();
    assert_eq!(
        c.current_url().await.unwrap().path(),
        format!("/admin/conversations/{}/{conv}", org.0)
    );
    let before: i64 = text(&c, "#delivery-hubspot .count").await.parse().unwrap();
    assert!(count(&c, "#transcript .msg").await > 0);
    let email = text(&c, "#contact-email").await;
    assert!(email.contains('@') && !email.contains('•'), "{email}");
    shot(&c, "conversation").await;
    click(&c, "#replay").await;
    assert!(text(&c, "#notice").await.contains("replay queued"));
    drained(&store, Duration::from_secs(30)).await;
    c.refresh().await.unwrap();
    let after: i64 = text(&c, "#delivery-hubspot .count").await.parse().unwrap();
    assert_eq!(after, before + 1, "the replay delivered once more");

    // Revoke through the confirmation (a wrong id changes nothing), then restore.
    c.goto(&format!("{base}/admin/tenants")).await.unwrap();
    let row = format!("#tenant-{}", org.0);
    assert_eq!(text(&c, &format!("{row} .status")).await, "active");
    click(&c, &format!("{row} a.revoke")).await;
    c.find(Locator::Id("confirm"))
        .await
        .unwrap()
        .send_keys("12345")
        .await
        .unwrap();
    click(&c, "#confirm-revoke").await;
    assert!(text(&c, "#error").await.contains("nothing changed"));
    assert_eq!(tenants.get(org).await.unwrap().unwrap().status, "active");
    c.find(Locator::Id("confirm"))
        .await
        .unwrap()
        .send_keys(&org.0.to_string())
        .await
        .unwrap();
    shot(&c, "revoke").await;
    click(&c, "#confirm-revoke").await;
    assert!(text(&c, "#notice").await.contains("disconnected"));
    assert_eq!(text(&c, &format!("{row} .status")).await, "revoked");
    click(&c, &format!("{row} button.restore")).await;
    assert!(
        text(&c, "#notice").await.contains("is active again"),
        "{}",
        text(&c, "#notice").await
    );
    assert_eq!(text(&c, &format!("{row} .status")).await, "active");
    shot(&c, "tenants").await;

    for (page, name) in [
        ("events", "events"),
        ("syncs", "syncs"),
        ("privacy", "privacy"),
        ("audit", "audit"),
    ] {
        c.goto(&format!("{base}/admin/{page}")).await.unwrap();
        shot(&c, name).await;
    }
    // Every action is in the audit, with who did it.
    let audit = text(&c, "#audit").await;
    for action in [
        "job.retry",
        "conversation.replay",
        "tenant.revoke",
        "tenant.restore",
    ] {
        assert!(audit.contains(action), "{action} in {audit}");
    }
    assert!(audit.contains("Ops Ana (admin"), "{audit}");
    c.goto(&format!("{base}/admin/events")).await.unwrap();
    c.find(Locator::Id("f-conversation"))
        .await
        .unwrap()
        .send_keys(&conv.to_string())
        .await
        .unwrap();
    click(&c, "form.filters button").await;
    assert!(
        count(&c, "#events tr td a").await >= 1,
        "the push of {conv} is found"
    );

    // Analytics: the report's charts for the synced conversations, drawn by the same code.
    let facts = bridge_store::analytics::facts(&store, org.0, 0, i64::MAX)
        .await
        .unwrap();
    assert!(!facts.is_empty());
    let playbooks = bridge_core::analytics::aggregate(&facts, bridge_core::analytics::By::Playbook);
    c.goto(&format!(
        "{base}/admin/analytics?since=2000-01-01&by=playbook"
    ))
    .await
    .unwrap();
    assert!(
        text(&c, "#summary").await.starts_with(&format!(
            "{} conversations of org {}",
            facts.len(),
            org.0
        )),
        "{}",
        text(&c, "#summary").await
    );
    assert_eq!(count(&c, "svg#reply-distribution rect").await, 7);
    assert!(count(&c, "svg#volume rect").await >= 1);
    assert_eq!(count(&c, "svg#funnel rect").await, 4 * playbooks.len());
    assert_eq!(count(&c, ".report table tr").await, 1 + playbooks.len());
    shot(&c, "analytics").await;

    // A POST without the CSRF token is refused, even from an admin session.
    let admin_cookie = c.get_named_cookie("driftbridge_console").await.unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let second = dead[1].id;
    let r = http
        .post(format!("{base}/admin/jobs/{second}/retry"))
        .header(
            "cookie",
            format!("driftbridge_console={}", admin_cookie.value()),
        )
        .form(&[("state", "dead")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("CSRF"));
    assert_eq!(job_state(&store, second).await, "dead");
    click(&c, "header form button").await;

    // The viewer: masked data, no controls, and a forged POST with its own CSRF token refused.
    sign_in(&c, &base, VIEWER, "Auditor").await;
    assert!(text(&c, "#who").await.contains("read-only"));
    c.goto(&format!("{base}/admin/conversations/{}/{conv}", org.0))
        .await
        .unwrap();
    let masked = text(&c, "#contact-email").await;
    assert!(masked.contains('•') && masked != email, "{masked}");
    assert_eq!(count(&c, "#replay").await, 0);
    let body = text(&c, "#transcript").await;
    assert!(body.contains("[hidden:"), "{body}");
    shot(&c, "viewer-conversation").await;
    c.goto(&format!("{base}/admin/jobs?state=dead"))
        .await
        .unwrap();
    assert!(count(&c, "#jobs tr[id^='job-']").await >= 2);
    assert_eq!(count(&c, "button.retry").await, 0);
    assert_eq!(count(&c, "#retry-matching").await, 0);
    let csrf = c
        .find(Locator::Css("header input[name=csrf]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    let viewer_cookie = c.get_named_cookie("driftbridge_console").await.unwrap();
    let r = http
        .post(format!("{base}/admin/jobs/{second}/retry"))
        .header(
            "cookie",
            format!("driftbridge_console={}", viewer_cookie.value()),
        )
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(job_state(&store, second).await, "dead");
    let r = http
        .get(format!("{base}/admin/jobs"))
        .header(
            "cookie",
            format!("driftbridge_console={}", viewer_cookie.value()),
        )
        .send()
        .await
        .unwrap();
    let h = r.headers();
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    click(&c, "header form button").await;

    // The admin retries what is left by filter, all at once.
    sign_in(&c, &base, ADMIN, "Ops Ana").await;
    c.goto(&format!(
        "{base}/admin/jobs?state=dead&name=deliver_conversation"
    ))
    .await
    .unwrap();
    click(&c, "#retry-matching").await;
    assert!(
        text(&c, "#notice")
            .await
            .contains("2 dead or cancelled jobs"),
        "{}",
        text(&c, "#notice").await
    );
    drained(&store, Duration::from_secs(30)).await;
    for j in &dead {
        assert_eq!(job_state(&store, j.id).await, "done");
    }
    c.close().await.unwrap();
    running.stop().await;
}
