//! `jobs list|dead|retry|cancel` and `events list|show` on a database `serve` filled: filters,
//! one line per row, `--json` per row, bulk retry.

use std::process::{Command, Output};
use std::time::Duration;

use bridge_store::Backend;
use drift_sim::crm::{FaultMode, Target};

use crate::crm::{env_with_sinks, hubspot_only, push_all};
use crate::helpers::*;

fn run(db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftbridge"))
        .args(args)
        .arg("--database-url")
        .arg(db)
        .env("DRIFTBRIDGE_MASTER_KEY", "ab".repeat(32))
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_and_events_are_listed_filtered_and_retried_from_the_command_line() {
    let Some(mut ce) = env_with_sinks(Backend::Sqlite, 6, hubspot_only).await else {
        return;
    };
    ce.env.config.workers.max_attempts = 1;
    let env = &ce.env;
    let ids = conversation_ids(&env.sim);
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    let store = running.queue.store().clone();
    push_all(running.addr, &env.sim, &ids[..3], 0).await;
    drained(&store, Duration::from_secs(60)).await;
    let crm = &env.sim.state.crm;
    crm.set_fault(
        Target::Hubspot,
        FaultMode::Unavailable,
        Duration::from_secs(600),
    );
    push_all(running.addr, &env.sim, &ids[3..5], 10).await;
    drained(&store, Duration::from_secs(60)).await;
    crm.set_fault(Target::Hubspot, FaultMode::Unavailable, Duration::ZERO);
    let db = env.db.url.as_str();

    // Compact rows: one line per job, the error clipped to one line.
    let dead = out(&run(db, &["jobs", "dead", "--error", "503"]));
    assert_eq!(dead.lines().count(), 2, "{dead}");
    assert!(
        dead.lines()
            .all(|l| l.contains("deliver_conversation") && l.contains("dead")),
        "{dead}"
    );
    assert!(dead.lines().all(|l| l.len() < 250), "{dead}");
    // --json: one object per line, every filter applied.
    let json = out(&run(
        db,
        &[
            "jobs",
            "list",
            "--state",
            "done",
            "--name",
            "sync_conversation",
            "--json",
        ],
    ));
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 5, "{json}");
    assert!(
        rows.iter()
            .all(|r| r["state"] == "done" && r["name"] == "sync_conversation")
    );
    let none = out(&run(
        db,
        &["jobs", "list", "--since", "2h", "--org", "1", "--json"],
    ));
    assert!(none.is_empty(), "another org has no jobs: {none}");
    let bad = run(db, &["jobs", "list", "--since", "yesterday"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not an age"));

    // Bulk retry of what matches, then nothing is dead.
    let r = out(&run(
        db,
        &["jobs", "retry", "--all", "--name", "deliver_conversation"],
    ));
    assert!(r.contains("2 dead or cancelled jobs"), "{r}");
    drained(&store, Duration::from_secs(30)).await;
    assert_eq!(out(&run(db, &["jobs", "dead"])).trim(), "no job matches");
    let done_id = rows[0]["id"].as_i64().unwrap().to_string();
    let cancel = run(db, &["jobs", "cancel", &done_id]);
    assert!(!cancel.status.success());
    assert!(String::from_utf8_lossy(&cancel.stderr).contains("is not queued"));

    // Events by conversation, and one event with the jobs it made.
    let conv = ids[0].0.to_string();
    let ev = out(&run(
        db,
        &["events", "list", "--conversation", &conv, "--json"],
    ));
    let evs: Vec<serde_json::Value> = ev
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(evs.len(), 1, "{ev}");
    assert_eq!(evs[0]["event_type"], "conversation_push");
    let id = evs[0]["id"].as_i64().unwrap().to_string();
    let show: serde_json::Value =
        serde_json::from_str(&out(&run(db, &["events", "show", &id, "--json"]))).unwrap();
    assert_eq!(show["payload"]["type"], "conversation_push");
    assert!(
        show["payload"].get("token").is_none(),
        "stored without its token"
    );
    assert_eq!(show["jobs"][0]["name"], "sync_conversation");
    let text = out(&run(db, &["events", "list", "--type", "conversation_push"]));
    assert_eq!(text.lines().count(), 5, "{text}");
    running.stop().await;
}
