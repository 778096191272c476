//! What deploy/ ships is true of the binary: every metric the Grafana dashboard and the
//! Prometheus alert rules name is exposed by `/metrics` of a `serve` that did some work, the
//! rules pass `promtool check rules` (skipped where promtool is missing, never under
//! `CI=true`: `.ci/run` installs Debian's `prometheus`), and the dashboard is valid JSON with
//! a query on every panel.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bridge_store::Backend;
use drift_types::Secret;

use crate::crm::{env_with_sinks, hubspot_only, push_all};
use crate::helpers::*;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Metric names in PromQL text: ours (`driftbridge_*`) and the process's (`process_*`),
/// with a histogram's `_bucket`, `_sum` and `_count` folded into its name.
fn metric_names(promql: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for word in promql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("driftbridge_") || word.starts_with("process_") {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| word.strip_suffix(s))
                .unwrap_or(word);
            out.insert(base.to_owned());
        }
    }
    out
}

/// Every `expr` of the dashboard's panels.
fn dashboard_exprs() -> Vec<String> {
    let text = std::fs::read_to_string(deploy().join("grafana/driftbridge.json")).unwrap();
    let d: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let panels = d["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10, "{} panels", panels.len());
    let mut exprs = Vec::new();
    for p in panels {
        let targets = p["targets"].as_array().expect("every panel has targets");
        assert!(!targets.is_empty(), "panel {} has no query", p["title"]);
        exprs.extend(
            targets
                .iter()
                .map(|t| t["expr"].as_str().unwrap().to_owned()),
        );
    }
    exprs
}

/// Every `expr:` line of the alert rules.
fn alert_exprs() -> Vec<String> {
    let text = std::fs::read_to_string(deploy().join("prometheus/alerts.yml")).unwrap();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .map(|e| e.trim().to_owned())
        .collect()
}

/// The names `/metrics` exposes (a histogram's series folded into its name).
fn exposed(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .flat_map(metric_names)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_in_the_dashboard_and_the_alert_rules_is_exposed() {
    let Some(mut ce) = env_with_sinks(Backend::Sqlite, 6, hubspot_only).await else {
        return;
    };
    ce.env.config.admin.token = Some(Secret::new("metrics-admin"));
    // The budget gauge exists where a limit does (unlimited orgs have no budget to show).
    ce.env.config.drift.rate_limit_per_minute = 60_000;
    let env = &ce.env;
    let ids = conversation_ids(&env.sim);
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    let store = running.queue.store().clone();
    // Work that touches every family: pushes (and one re-delivery), deliveries, a sync run.
    push_all(running.addr, &env.sim, &ids, 0).await;
    push_all(running.addr, &env.sim, &ids[..1], 0).await;
    drained(&store, Duration::from_secs(60)).await;
    crate::analytics::export(env, org(&env.sim).0, None).await;

    let http = reqwest::Client::new();
    let url = format!("http://{}/metrics", running.addr);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    let text = http
        .get(&url)
        .bearer_auth("metrics-admin")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let have = exposed(&text);
    let mut named = BTreeSet::new();
    for e in dashboard_exprs().iter().chain(&alert_exprs()) {
        named.extend(metric_names(e));
    }
    assert!(named.len() >= 15, "{named:?}");
    let missing: Vec<&String> = named.difference(&have).collect();
    assert!(
        missing.is_empty(),
        "named in deploy/ but not exposed: {missing:?}\n{text}"
    );
    // The Prometheus conventions: counters end in _total, and the old gauge is gone.
    assert!(
        text.contains("# TYPE driftbridge_drift_requests_total counter"),
        "{text}"
    );
    assert!(!text.contains("driftbridge_drift_calls"));
    assert!(text.contains("# TYPE driftbridge_sink_delivery_seconds histogram"));
    assert!(text.contains("driftbridge_build_info{version=\""));
    assert!(text.contains("driftbridge_queue_oldest_age_seconds{kind=\"sync_conversation\"} 0"));
    running.stop().await;
}

#[test]
fn the_alert_rules_pass_promtool() {
    let Some(promtool) = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no promtool; under CI=true there must be one (.ci/run installs prometheus)"
        );
        eprintln!("skipping promtool: not installed");
        return;
    };
    let out = std::process::Command::new(promtool)
        .args(["check", "rules"])
        .arg(deploy().join("prometheus/alerts.yml"))
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("SUCCESS: 8 rules found"), "{said}");
}
