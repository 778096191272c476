//! `driftbridge airbyte` as Airbyte runs it: the binary, config and catalog files, JSON lines
//! on stdout, validated with Airbyte's own protocol models.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use bridge_store::tables::{TABLES, table};
use serde_json::{Value, json};

use crate::export::{ground_truth, python_with, sim, since};
use crate::helpers::org;

pub(crate) fn airbyte(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftbridge"))
        .arg("airbyte")
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

pub(crate) fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// Airbyte's models accept every line; answers their summary.
fn validate(out: &Output) -> Option<Value> {
    let python = python_with("airbyte_protocol.models")?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/validate_airbyte.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let v = child.wait_with_output().unwrap();
    assert!(
        v.status.success(),
        "the protocol models rejected the output"
    );
    Some(serde_json::from_slice(&v.stdout).unwrap())
}

fn record_ids(msgs: &[Value], stream: &str, field: &str) -> BTreeSet<i64> {
    msgs.iter()
        .filter(|m| m["type"] == "RECORD" && m["record"]["stream"] == stream)
        .map(|m| m["record"]["data"][field].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn airbyte_read_speaks_the_protocol_and_its_state_makes_the_next_read_incremental() {
    let sim = sim(300).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("config.json"),
        json!({
            "access_token": sim.token(), "base_url": sim.base_url(), "rate_limit_per_minute": 0,
            "meetings_since": since().to_string(),
        })
        .to_string(),
    )
    .unwrap();

    for cmd in [
        &["spec"][..],
        &["check", "--config", "config.json"],
        &["discover", "--config", "config.json"],
    ] {
        let out = airbyte(cmd, d);
        assert!(out.status.success(), "{cmd:?}");
        if let Some(v) = validate(&out) {
            assert_eq!(v["types"].as_object().unwrap().len(), 1, "{cmd:?}: {v}");
        }
    }
    let discovered = lines(&airbyte(&["discover", "--config", "config.json"], d));
    let streams = discovered[0]["catalog"]["streams"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(streams.len(), TABLES.len());
    let status = lines(&airbyte(&["check", "--config", "config.json"], d));
    assert_eq!(status[0]["connectionStatus"]["status"], "SUCCEEDED");

    // Every stream, the incremental ones in incremental mode.
    let configured = json!({"streams": streams.iter().map(|s| json!({
        "stream": s,
        "sync_mode": if s["supported_sync_modes"].as_array().unwrap().len() == 2 { "incremental" } else { "full_refresh" },
        "destination_sync_mode": "append",
    })).collect::<Vec<_>>()});
    std::fs::write(d.join("catalog.json"), configured.to_string()).unwrap();
    let first = airbyte(
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
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let msgs = lines(&first);
    let (truth, _) = ground_truth(&sim);
    for t in TABLES.iter() {
        let n = msgs
            .iter()
            .filter(|m| m["type"] == "RECORD" && m["record"]["stream"] == t.name)
            .count();
        assert_eq!(n, truth.rows(t).len(), "records of {}", t.name);
    }
    let summary = validate(&first);
    let states: Vec<Value> = match &summary {
        Some(v) => v["states"].as_object().unwrap().values().cloned().collect(),
        None => {
            let mut last = std::collections::BTreeMap::new();
            for m in msgs.iter().filter(|m| m["type"] == "STATE") {
                last.insert(
                    m["state"]["stream"]["stream_descriptor"]["name"].to_string(),
                    m["state"].clone(),
                );
            }
            last.into_values().collect()
        }
    };
    assert_eq!(states.len(), TABLES.len(), "one state per stream");
    std::fs::write(d.join("state.json"), Value::Array(states).to_string()).unwrap();

    // Five conversations change; the second read with the state fetches only around them.
    let changed: BTreeSet<i64> = drift_sim::control::mutate_conversations(&sim.state, org(&sim), 5)
        .unwrap()
        .into_iter()
        .map(|c| c.0)
        .collect();
    *sim.state.log.lock() = Default::default();
    let second = airbyte(
        &[
            "read",
            "--config",
            "config.json",
            "--catalog",
            "catalog.json",
            "--state",
            "state.json",
        ],
        d,
    );
    assert!(second.status.success());
    validate(&second);
    let msgs = lines(&second);
    let convs = record_ids(&msgs, "conversations", "id");
    assert!(convs.is_superset(&changed), "{convs:?} lacks {changed:?}");
    assert!(
        convs.len() < 20,
        "an incremental read emitted {} conversations",
        convs.len()
    );
    let message_convs = record_ids(&msgs, "messages", "conversation_id");
    assert!(message_convs.is_subset(&convs));
    assert_eq!(
        sim.state.log.lock().count("GET", "/conversations/{id}") as usize,
        convs.len(),
        "only those conversations were fetched"
    );
    let users = msgs
        .iter()
        .filter(|m| m["type"] == "RECORD" && m["record"]["stream"] == "users")
        .count();
    assert_eq!(
        users,
        truth.rows(table("users").unwrap()).len(),
        "full-refresh streams are read in full"
    );
}

#[test]
fn a_bad_config_ends_with_a_trace_error_and_a_failure_exit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"acces_token": "x"}"#).unwrap();
    let out = airbyte(&["read", "--config", "config.json"], dir.path());
    assert!(!out.status.success());
    let msgs = lines(&out);
    let last = msgs.last().expect("a TRACE message");
    assert_eq!(last["type"], "TRACE");
    assert_eq!(last["trace"]["type"], "ERROR");
    let m = last["trace"]["error"]["message"].as_str().unwrap();
    assert!(m.contains("does not match the spec"), "{m}");
    validate(&out);
}
