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

/// The section types of an ELF64 little-endian file (`sh_type` of each section header).
fn section_types(path: &Path) -> Vec<u32> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).unwrap();
    let mut header = [0u8; 64];
    f.read_exact(&mut header).unwrap();
    assert_eq!(
        &header[..6],
        b"\x7fELF\x02\x01",
        "not an ELF64 little-endian file"
    );
    let offset = u64::from_le_bytes(header[0x28..0x30].try_into().unwrap());
    let size = usize::from(u16::from_le_bytes([header[0x3a], header[0x3b]]));
    let count = usize::from(u16::from_le_bytes([header[0x3c], header[0x3d]]));
    let mut table = vec![0u8; size * count];
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.read_exact(&mut table).unwrap();
    table
        .chunks(size)
        .map(|s| u32::from_le_bytes(s[4..8].try_into().unwrap()))
        .collect()
}

/// docs/BENCHMARKS.md, "Packed relocations": where glibc can load packed relative
/// relocations (2.36 and later) the binary carries them, so the loader does not keep a
/// 1.5 MB relocation table resident. Skipped on other systems, never under `CI=true`.
#[test]
fn the_binary_packs_its_relative_relocations_where_glibc_loads_them() {
    const SHT_RELR: u32 = 19;
    let glibc = std::process::Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            let (major, minor) = s.trim().strip_prefix("glibc ")?.split_once('.')?;
            Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?))
        });
    if !cfg!(all(target_os = "linux", target_env = "gnu")) || glibc.is_none_or(|v| v < (2, 36)) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI runs on Debian 12 (glibc 2.36); this system has {glibc:?}"
        );
        eprintln!("skipping: glibc {glibc:?} cannot load packed relocations");
        return;
    }
    let types = section_types(Path::new(env!("CARGO_BIN_EXE_driftbridge")));
    assert!(types.len() > 10, "{types:?}");
    assert!(
        types.contains(&SHT_RELR),
        "no .relr.dyn section: crates/driftbridge/build.rs did not pass -z pack-relative-relocs"
    );
}
