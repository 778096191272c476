//! Conversation analytics: the facts an export writes equal Drift's own reporting API for
//! every conversation of a 5,000-conversation dataset, through the real HTTP path; a changed
//! fact is caught; the report's groups add up.

use bridge_store::{Backend, Store};
use drift_types::OrgId;

use crate::helpers::*;

/// A full export of the org into `to` (the configured store when `None`).
pub async fn export(env: &Env, org: i64, to: Option<String>) {
    let args = driftbridge::export_cmd::ExportArgs {
        to,
        tables: Vec::new(),
        contacts_from: None,
        org: Some(org),
        concurrency: 16,
        meetings_since: None,
        restart: false,
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
    export(&env, o.0, None).await;
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
    let diffs = bridge_core::analytics::check_against_drift(&client, &facts, 0, i64::MAX)
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
    let diffs = bridge_core::analytics::check_against_drift(&client, &facts, 0, i64::MAX)
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
    export(&env, o.0, Some(format!("parquet:{}", dir.path().display()))).await;
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
