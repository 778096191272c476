//! Conversation analytics: the facts an export writes equal Drift's own reporting API for
//! every conversation of a 5,000-conversation dataset, through the real HTTP path; a changed
//! fact is caught; the report's groups add up.

use std::time::Duration;

use bridge_store::{Backend, Store};
use drift_types::OrgId;

use crate::helpers::*;

/// A full export of the org into `to` (the configured store when `None`).
pub async fn export(env: &Env, org: i64, to: Option<String>) {
    export_with(env, org, to, None).await;
}

/// [`export`], listing meetings since `meetings_since` (the simulator's meetings are early in
/// 2026; the default window is the last 30 days).
pub async fn export_with(env: &Env, org: i64, to: Option<String>, meetings_since: Option<&str>) {
    let args = driftbridge::export_cmd::ExportArgs {
        to,
        tables: Vec::new(),
        contacts_from: None,
        org: Some(org),
        concurrency: 16,
        meetings_since: meetings_since.map(str::to_owned),
        restart: false,
        attachments: None,
        json: true,
        overlap_secs: 3600,
    };
    driftbridge::export_cmd::run(&env.config, args, bridge_export::Mode::Full)
        .await
        .unwrap();
}

#[tokio::test]
async fn facts_of_5000_conversations_equal_drifts_report_and_a_changed_one_is_caught() {
    let Some(env) = env(Backend::Sqlite, 5000).await else {
        return;
    };
    let o = org(&env.sim);
    // Meetings since 2025 (the simulator's are early in 2026): the meeting rates and the facts'
    // meetings_booked are then about real rows.
    export_with(&env, o.0, None, Some("2025-01-01")).await;
    let store = Store::connect(&env.db.url).await.unwrap();
    let facts = bridge_store::analytics::facts(&store, o.0, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(facts.len(), 5000);
    assert!(facts.iter().any(|f| f.handed_to_agent) && facts.iter().any(|f| f.bot_only));
    assert!(facts.iter().any(|f| f.facts.time_to_close_ms.is_some()));
    // Every stored fact reads back as computed from the simulator's own conversation.
    {
        let world = env.sim.state.world.lock();
        let w = world.org(o).unwrap();
        for f in &facts {
            let rec = &w.conversations[&drift_types::ConversationId(f.conversation_id)];
            let want = bridge_store::tables::Facts::of(&rec.conversation, &rec.messages);
            assert_eq!(f.facts, want, "conversation {}", f.conversation_id);
            assert!(!f.goal_met, "no goal webhooks in this dataset");
        }
    }
    let client = crate::export::client(&env.sim);
    let diffs =
        bridge_core::analytics::check_against_drift(&client, &facts.iter().collect(), 0, i64::MAX)
            .await
            .unwrap();
    assert_eq!(diffs, vec![], "every metric of every conversation agrees");
    // The command says the same.
    let report = |check: bool, by: &str, format: &str, out: Option<std::path::PathBuf>| {
        driftbridge::report_cmd::ReportArgs {
            since: Some("0".into()),
            until: None,
            org: Some(o.0),
            by: by.into(),
            format: format.into(),
            out,
            check_against_drift: check,
        }
    };
    driftbridge::report_cmd::run(&env.config, report(true, "day", "text", None))
        .await
        .unwrap();

    // One fact changed behind the report's back: exactly that one is named.
    let victim = facts.iter().find(|f| f.facts.agent_messages > 0).unwrap();
    let nudge = |by: i64| {
        bridge_store::sqlx::query(
            "UPDATE conversation_facts SET agent_messages = agent_messages + $3 \
             WHERE org_id = $1 AND conversation_id = $2",
        )
        .bind(o.0)
        .bind(victim.conversation_id)
        .bind(by)
        .execute(store.pool())
    };
    nudge(1).await.unwrap();
    let facts = bridge_store::analytics::facts(&store, o.0, 0, i64::MAX)
        .await
        .unwrap();
    let diffs =
        bridge_core::analytics::check_against_drift(&client, &facts.iter().collect(), 0, i64::MAX)
            .await
            .unwrap();
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert_eq!(diffs[0].conversation_id, victim.conversation_id);
    assert_eq!(diffs[0].metric, "numAgentMessages");
    assert!(
        driftbridge::report_cmd::run(&env.config, report(true, "day", "text", None))
            .await
            .is_err()
    );

    // The groups of every grouping add up to the conversations.
    for by in ["day", "week", "agent", "playbook", "inbox"] {
        let out = tempfile::NamedTempFile::new().unwrap();
        driftbridge::report_cmd::run(
            &env.config,
            report(false, by, "json", Some(out.path().to_owned())),
        )
        .await
        .unwrap();
        let groups: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(out.path()).unwrap()).unwrap();
        let n: u64 = groups
            .iter()
            .map(|g| g["conversations"].as_u64().unwrap())
            .sum();
        assert_eq!(n, 5000, "by {by}");
    }

    // The HTML page: three charts and the table, self-contained.
    let page = tempfile::Builder::new().suffix(".html").tempfile().unwrap();
    driftbridge::report_cmd::run(
        &env.config,
        report(false, "agent", "html", Some(page.path().to_owned())),
    )
    .await
    .unwrap();
    let html = std::fs::read_to_string(page.path()).unwrap();
    for id in ["reply-distribution", "volume", "funnel"] {
        assert!(html.contains(&format!("<svg id=\"{id}\"")), "{id}");
    }
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));

    // The day groups equal an independent recomputation from the Parquet export (pyarrow).
    let Some(python) = crate::export::python_with("pyarrow") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    export_with(
        &env,
        o.0,
        Some(format!("parquet:{}", dir.path().display())),
        Some("2025-01-01"),
    )
    .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/report_groups.py");
    let until = drift_types::now_ms() + 1;
    let py = std::process::Command::new(python)
        .args([
            script,
            &dir.path().display().to_string(),
            "0",
            &until.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let theirs: Vec<serde_json::Value> = serde_json::from_slice(&py.stdout).unwrap();
    // The store's report, after putting the changed fact back.
    nudge(-1).await.unwrap();
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut args = report(false, "day", "json", Some(out.path().to_owned()));
    args.until = Some(until.to_string());
    driftbridge::report_cmd::run(&env.config, args)
        .await
        .unwrap();
    let ours: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(out.path()).unwrap()).unwrap();
    assert!(ours.len() > 1, "{ours:?}");
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        for (k, v) in a.as_object().unwrap() {
            let w = &b[k];
            match (v.as_f64(), w.as_f64()) {
                (Some(x), Some(y)) if v.is_f64() || w.is_f64() => {
                    assert!((x - y).abs() < 1e-9, "{} {k}: {v} vs {w}", a["key"])
                }
                _ => assert_eq!(v, w, "{} {k}", a["key"]),
            }
        }
    }
    let _ = OrgId(o.0);
}

/// The facts row's outcome columns: (goal_met, meetings_booked).
async fn outcomes(store: &Store, org: i64, id: i64) -> (i64, i64) {
    bridge_store::sqlx::query_as(
        "SELECT goal_met, meetings_booked FROM conversation_facts \
         WHERE org_id = $1 AND conversation_id = $2",
    )
    .bind(org)
    .bind(id)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

fn goal_met(org: i64, conversation: i64) -> serde_json::Value {
    serde_json::json!({"type": "playbook_goal_met", "orgId": org, "token": VERIFY, "data": {
        "conversationId": conversation, "playbookId": 77, "contactId": 1, "goalId": "g-1",
        "goalName": "Booked a demo", "playbookName": "Pricing"}})
}

fn meeting(org: i64, conversation: i64, key: &str) -> serde_json::Value {
    serde_json::json!({"type": "new_meeting", "orgId": org, "token": VERIFY, "data": {
        "agentId": 5, "orgId": org, "eventId": key, "slug": key, "schedulerId": 1,
        "slotStart": 1_767_300_000_000_i64, "slotEnd": 1_767_301_800_000_i64,
        "scheduledAt": 1_767_200_000_000_i64, "conversationId": conversation}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goals_and_meetings_reach_the_facts_in_any_order_and_in_a_file_export() {
    let Some(env) = env(Backend::Sqlite, 60).await else {
        return;
    };
    let o = org(&env.sim).0;
    let ids: Vec<i64> = conversation_ids(&env.sim).iter().map(|c| c.0).collect();
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    let store = running.queue.store().clone();
    let http = reqwest::Client::new();
    // A goal before its conversation was ever synced; the rest after.
    assert_eq!(
        post(&http, running.addr, &goal_met(o, ids[2]))
            .await
            .unwrap(),
        200
    );
    drained(&store, Duration::from_secs(30)).await;
    crate::crm::push_all(running.addr, &env.sim, &conversation_ids(&env.sim), 0).await;
    drained(&store, Duration::from_secs(30)).await;
    assert_eq!(
        outcomes(&store, o, ids[2]).await,
        (1, 0),
        "the earlier goal counts"
    );
    assert_eq!(outcomes(&store, o, ids[0]).await, (0, 0));
    for body in [
        goal_met(o, ids[0]),
        meeting(o, ids[1], "m-1"),
        meeting(o, ids[1], "m-2"),
        meeting(o, ids[0], "m-3"),
    ] {
        assert_eq!(post(&http, running.addr, &body).await.unwrap(), 200);
    }
    drained(&store, Duration::from_secs(30)).await;
    assert_eq!(outcomes(&store, o, ids[0]).await, (1, 1));
    assert_eq!(outcomes(&store, o, ids[1]).await, (0, 2));
    // Synced again: the facts are rewritten, their outcomes stay.
    crate::crm::push_all(running.addr, &env.sim, &conversation_ids(&env.sim), 100).await;
    drained(&store, Duration::from_secs(30)).await;
    assert_eq!(outcomes(&store, o, ids[0]).await, (1, 1));
    assert_eq!(outcomes(&store, o, ids[2]).await, (1, 0));
    let facts = bridge_store::analytics::facts(&store, o, 0, i64::MAX)
        .await
        .unwrap();
    let f0 = facts.iter().find(|f| f.conversation_id == ids[0]).unwrap();
    assert!(f0.goal_met);
    assert_eq!(f0.meetings, 1);
    running.stop().await;

    // A JSONL export: the goals come from the configured store, the meetings from the run's
    // own meetings list (the simulator's, not the webhooks above). Drift lists the last 30
    // days only: one meeting of these conversations is booked for tomorrow, whatever the
    // generated ones' dates are today.
    {
        let mut world = env.sim.state.world.lock();
        let org = world.org_mut(drift_types::OrgId(o)).unwrap();
        let mut m = org.meetings[0].clone();
        let tomorrow = drift_types::now_ms() + 86_400_000;
        m.event_id = Some("analytics-tomorrow".into());
        m.slot_start = Some(drift_types::EpochMillis(tomorrow));
        m.slot_end = Some(drift_types::EpochMillis(tomorrow + 1_800_000));
        m.conversation_id = Some(drift_types::ConversationId(ids[3]));
        org.meetings.push(m);
    }
    let dir = tempfile::tempdir().unwrap();
    export_with(
        &env,
        o,
        Some(format!("jsonl:{}", dir.path().display())),
        Some("2025-01-01"),
    )
    .await;
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("_manifest.json")).unwrap()).unwrap();
    let read = |table: &str| -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for part in manifest["parts"][table].as_array().into_iter().flatten() {
            let text = std::fs::read_to_string(dir.path().join(part.as_str().unwrap())).unwrap();
            out.extend(
                text.lines()
                    .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()),
            );
        }
        out
    };
    let facts_rows = read("conversation_facts");
    let mut booked: std::collections::BTreeMap<i64, i64> = Default::default();
    for m in read("meetings") {
        if let Some(c) = m["conversation_id"].as_i64() {
            *booked.entry(c).or_default() += 1;
        }
    }
    assert_eq!(facts_rows.len(), ids.len());
    assert!(
        !booked.is_empty(),
        "the simulator's meetings name some of these conversations"
    );
    for f in &facts_rows {
        let id = f["conversation_id"].as_i64().unwrap();
        let want_goal = id == ids[0] || id == ids[2];
        assert_eq!(f["goal_met"].as_bool(), Some(want_goal), "{f}");
        assert_eq!(
            f["meetings_booked"].as_i64(),
            Some(booked.get(&id).copied().unwrap_or(0)),
            "{f}"
        );
    }
}
