//! Disconnects are visible and reversible: `tenants revoke` asks and refuses an org that only
//! a configured token speaks for, a disconnected org's skipped jobs are counted and its
//! reason listed, and `tenants restore` or a re-install runs what was skipped.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use bridge_store::{Backend, Store};
use drift_types::webhook::AppDisconnected;
use drift_types::{OrgId, Secret, WebhookEnvelope, WebhookEvent};

use crate::helpers::{Env, VERIFY, count, drained, env, post, push};
use crate::tenants::{install, tenant_env};

/// Runs the binary against the environment (private-app token, the same store and key).
fn cli(env: &Env, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftbridge"))
        .args(args)
        .args(["--database-url", &env.db.url])
        .env("DRIFTBRIDGE_DRIFT__BASE_URL", env.sim.base_url())
        .env("DRIFTBRIDGE_DRIFT__TOKEN", env.sim.token())
        .env("DRIFTBRIDGE_DRIFT__RATE_LIMIT_PER_MINUTE", "0")
        .env(
            "DRIFTBRIDGE_MASTER_KEY",
            env.config.secrets.master_key.as_ref().unwrap().expose(),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn said(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn disconnect_event(org: OrgId) -> serde_json::Value {
    let ev = WebhookEnvelope::new(
        &WebhookEvent::AppDisconnected(AppDisconnected {
            org_id: Some(org),
            app_id: Some("driftbridge-sim-app".into()),
            disconnected_at: None,
        }),
        org,
        Some(Secret::new(VERIFY)),
    );
    serde_json::to_value(ev).unwrap()
}

async fn tenant_status(store: &Store, org: OrgId) -> Option<(String, Option<String>)> {
    bridge_store::sqlx::query_as("SELECT status, revoked_reason FROM tenants WHERE org_id = $1")
        .bind(org.0)
        .fetch_optional(store.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_configured_token_org_is_refused_unless_forced_and_confirmed_and_restore_runs_what_was_skipped()
 {
    let env = env(Backend::Sqlite, 3).await.unwrap();
    let org = env.sim.state.default_org();
    let o = org.0.to_string();
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    let store = Store::connect(&env.db.url).await.unwrap();

    // Only the configured token speaks for this org: refused, with the way out.
    let out = cli(&env, &["tenants", "revoke", &o]);
    assert!(!out.status.success());
    let text = said(&out);
    assert!(
        text.contains("has not installed the app")
            && text.contains("configured Drift token speaks for it")
            && text.contains("--force"),
        "{text}"
    );
    assert_eq!(tenant_status(&store, org).await, None, "nothing changed");
    // Forced, but nobody confirmed (standard input is not a terminal).
    let out = cli(&env, &["tenants", "revoke", &o, "--force"]);
    assert!(!out.status.success());
    assert!(said(&out).contains("pass --yes"), "{}", said(&out));
    assert_eq!(tenant_status(&store, org).await, None, "nothing changed");
    let out = cli(&env, &["tenants", "revoke", &o, "--force", "--yes"]);
    assert!(out.status.success(), "{}", said(&out));
    let (status, reason) = tenant_status(&store, org).await.unwrap();
    assert_eq!(status, "revoked");
    assert!(reason.unwrap().contains("tenants revoke"));

    // A push while disconnected: kept, its job skipped and counted.
    let http = reqwest::Client::new();
    let id = crate::helpers::conversation_ids(&env.sim)[0];
    assert_eq!(
        post(&http, running.addr, &push(org, id, 1)).await.unwrap(),
        200
    );
    drained(&store, Duration::from_secs(30)).await;
    assert_eq!(count(&store, "SELECT COUNT(*) FROM conversations").await, 0);
    assert_eq!(
        running.metrics.counter(
            "driftbridge_jobs_skipped_total",
            r#"job="sync_conversation""#
        ),
        1
    );
    let list = said(&cli(&env, &["tenants", "list"]));
    assert!(
        list.contains("revoked")
            && list.contains("an operator's `driftbridge tenants revoke`")
            && list.contains("1 events kept since")
            && list.contains(&format!("tenants restore {o}")),
        "{list}"
    );

    // Restore: active again, and the skipped push runs.
    let out = cli(&env, &["tenants", "restore", &o]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(said(&out).contains("jobs of 1 events"), "{}", said(&out));
    assert_eq!(tenant_status(&store, org).await.unwrap().0, "active");
    drained(&store, Duration::from_secs(30)).await;
    assert_eq!(count(&store, "SELECT COUNT(*) FROM conversations").await, 1);
    // A second restore has nothing to do.
    let again = cli(&env, &["tenants", "restore", &o]);
    assert!(again.status.success());
    assert!(said(&again).contains("nothing to restore"));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_disconnected_for_a_configured_token_org_is_listed_with_its_event_and_restorable() {
    let env = env(Backend::Sqlite, 3).await.unwrap();
    let org = env.sim.state.default_org();
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    let store = Store::connect(&env.db.url).await.unwrap();
    let http = reqwest::Client::new();
    assert_eq!(
        post(&http, running.addr, &disconnect_event(org))
            .await
            .unwrap(),
        200
    );
    drained(&store, Duration::from_secs(30)).await;
    let (status, reason) = tenant_status(&store, org).await.unwrap();
    assert_eq!(status, "revoked");
    assert!(
        reason
            .as_deref()
            .unwrap()
            .starts_with("Drift sent app_disconnected (event "),
        "{reason:?}"
    );
    for (n, id) in crate::helpers::conversation_ids(&env.sim)
        .iter()
        .take(2)
        .enumerate()
    {
        post(&http, running.addr, &push(org, *id, n as i64))
            .await
            .unwrap();
    }
    drained(&store, Duration::from_secs(30)).await;
    assert_eq!(count(&store, "SELECT COUNT(*) FROM conversations").await, 0);
    let list = said(&cli(&env, &["tenants", "list"]));
    assert!(
        list.contains("Drift sent app_disconnected") && list.contains("kept since"),
        "{list}"
    );
    let out = cli(&env, &["tenants", "restore", &org.0.to_string()]);
    assert!(out.status.success(), "{}", said(&out));
    drained(&store, Duration::from_secs(30)).await;
    // Both pushes ran; the disconnect itself was not replayed.
    assert_eq!(count(&store, "SELECT COUNT(*) FROM conversations").await, 2);
    assert_eq!(tenant_status(&store, org).await.unwrap().0, "active");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reinstall_runs_the_jobs_the_disconnect_cancelled_and_skipped() {
    let Some(env) = tenant_env(Backend::Sqlite, 1).await else {
        return;
    };
    let org = env.sim.state.default_org();
    // No workers: the disconnect and two pushes behind it stay queued.
    let gateway = driftbridge::serve::start(&env.config, false).await.unwrap();
    let store = Store::connect(&env.db.url).await.unwrap();
    install(&env.sim, gateway.addr, org).await;
    let http = reqwest::Client::new();
    let ids = crate::helpers::conversation_ids(&env.sim);
    post(&http, gateway.addr, &disconnect_event(org))
        .await
        .unwrap();
    post(&http, gateway.addr, &push(org, ids[0], 0))
        .await
        .unwrap();
    gateway.stop().await;
    // One worker: the disconnect (queued first) runs first and cancels the push.
    let mut one = env.config.clone();
    one.workers.concurrency = 1;
    let running = driftbridge::serve::start(&one, true).await.unwrap();
    drained(&store, Duration::from_secs(30)).await;
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM jobs WHERE state = 'cancelled'"
        )
        .await,
        1,
        "the push queued behind the disconnect was cancelled"
    );
    // One more while disconnected: skipped.
    post(&http, running.addr, &push(org, ids[1], 1))
        .await
        .unwrap();
    drained(&store, Duration::from_secs(30)).await;
    assert_eq!(count(&store, "SELECT COUNT(*) FROM conversations").await, 0);

    install(&env.sim, running.addr, org).await;
    drained(&store, Duration::from_secs(30)).await;
    assert_eq!(count(&store, "SELECT COUNT(*) FROM conversations").await, 2);
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM jobs WHERE state = 'cancelled'"
        )
        .await,
        0
    );
    assert_eq!(tenant_status(&store, org).await.unwrap().0, "active");
    running.stop().await;
}
