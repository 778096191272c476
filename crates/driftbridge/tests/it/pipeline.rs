//! Events through serve's workers into the warehouse, under faults.

use std::time::Duration;

use bridge_queue::JobState;
use bridge_store::testing::BACKENDS;
use drift_sim::FaultRule;

use crate::helpers::*;

#[tokio::test]
async fn pushes_under_20_percent_faults_drain_and_match_the_ground_truth() {
    for backend in BACKENDS {
        let Some(env) = env(*backend, 30).await else {
            continue;
        };
        env.sim.state.faults.lock().set(vec![FaultRule {
            error_rate: 0.1,
            rate_limit_rate: 0.1,
            retry_after_secs: Some(0),
            ..FaultRule::default()
        }]);
        let running = driftbridge::serve::start(&env.config, true).await.unwrap();
        let http = reqwest::Client::new();
        let ids = conversation_ids(&env.sim);
        for (n, id) in ids.iter().enumerate() {
            let status = post(&http, running.addr, &push(org(&env.sim), *id, n as i64))
                .await
                .unwrap();
            assert_eq!(status, 200);
        }
        let q = running.queue.clone();
        drained(q.store(), Duration::from_secs(120)).await;
        let injected = env.sim.state.faults.lock().injected;
        assert!(
            injected >= 10,
            "{backend:?}: only {injected} faults injected"
        );
        let store = running.queue.store().clone();
        assert_eq!(
            q.list(JobState::Dead, 10).await.unwrap(),
            vec![],
            "{backend:?}"
        );
        assert_ground_truth(&store, &env.sim, &ids).await;
        let metrics = running.metrics.render(&[]);
        assert!(
            metrics.contains(
                "driftbridge_jobs_finished_total{name=\"sync_conversation\",outcome=\"completed\"}"
            ),
            "{metrics}"
        );
        running.stop().await;
    }
}

#[tokio::test]
async fn a_job_that_always_fails_is_dead_with_its_error_and_jobs_retry_runs_it() {
    for backend in BACKENDS {
        let Some(mut env) = env(*backend, 5).await else {
            continue;
        };
        env.config.workers.max_attempts = 3;
        env.config.drift.max_retries = 1;
        let id = conversation_ids(&env.sim)[2];
        env.sim.state.faults.lock().set(vec![FaultRule {
            path_prefix: Some(format!("/conversations/{id}")),
            error_rate: 1.0,
            error_status: Some(500),
            ..FaultRule::default()
        }]);
        let running = driftbridge::serve::start(&env.config, true).await.unwrap();
        let http = reqwest::Client::new();
        assert_eq!(
            post(&http, running.addr, &push(org(&env.sim), id, 1))
                .await
                .unwrap(),
            200
        );
        let q = running.queue.clone();
        wait_until("the job to die", Duration::from_secs(60), || {
            let q = q.clone();
            async move { !q.list(JobState::Dead, 1).await.unwrap().is_empty() }
        })
        .await;
        let dead = q.list(JobState::Dead, 10).await.unwrap();
        assert_eq!(dead.len(), 1, "{backend:?}");
        assert_eq!(dead[0].attempts, 3);
        let err = dead[0].last_error.clone().unwrap();
        assert!(err.contains("500"), "{backend:?}: {err}");
        let store = running.queue.store().clone();
        assert_eq!(count(&store, "SELECT COUNT(*) FROM conversations").await, 0);

        env.sim.state.faults.lock().set(Vec::new());
        driftbridge::jobs_cmd::retry(&env.config, Some(dead[0].id), false, &Default::default())
            .await
            .unwrap();
        wait_until("the retried job", Duration::from_secs(30), || {
            let q = q.clone();
            let jid = dead[0].id;
            async move { q.get(jid).await.unwrap().unwrap().state == JobState::Done }
        })
        .await;
        assert_ground_truth(&store, &env.sim, &[id]).await;
        running.stop().await;
    }
}

#[tokio::test]
async fn every_event_type_from_the_simulator_is_processed_without_dead_letters() {
    for backend in BACKENDS {
        let Some(env) = env(*backend, 40).await else {
            continue;
        };
        let running = driftbridge::serve::start(&env.config, true).await.unwrap();
        let hook = format!("http://{}/webhooks/drift", running.addr);
        env.sim.state.webhooks.configure(|w| {
            w.url = Some(hook);
            w.verification_token = drift_types::Secret::new(VERIFY);
        });
        let http = reqwest::Client::new();
        let resp = http
            .post(format!("{}/sim/webhooks/emit", env.sim.base_url()))
            .json(&serde_json::json!({"count": 300, "duplicate_rate": 0.2, "shuffle": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(env.sim.state.webhooks.drain(Duration::from_secs(60)).await);
        assert_eq!(env.sim.state.webhooks.stats().gave_up, 0, "{backend:?}");
        let q = running.queue.clone();
        drained(q.store(), Duration::from_secs(120)).await;
        assert_eq!(
            q.list(JobState::Dead, 10).await.unwrap(),
            vec![],
            "{backend:?}"
        );
        let store = running.queue.store().clone();
        for (table, sql) in [
            ("conversations", "SELECT COUNT(*) FROM conversations"),
            ("messages", "SELECT COUNT(*) FROM messages"),
            ("contacts", "SELECT COUNT(*) FROM contacts"),
            ("users", "SELECT COUNT(*) FROM users"),
            ("meetings", "SELECT COUNT(*) FROM meetings"),
            ("goals", "SELECT COUNT(*) FROM playbook_goals_met"),
            (
                "participants",
                "SELECT COUNT(*) FROM conversation_participants",
            ),
        ] {
            assert!(count(&store, sql).await > 0, "{backend:?}: no {table}");
        }
        // Re-deliveries were acknowledged as duplicates, not stored again.
        let received = running.metrics.render(&[]);
        assert!(
            received.contains("driftbridge_events_duplicate_total"),
            "{received}"
        );
        running.stop().await;
    }
}

#[tokio::test]
async fn replay_runs_a_conversation_or_an_event_again_without_duplicating_rows() {
    for backend in BACKENDS {
        let Some(env) = env(*backend, 5).await else {
            continue;
        };
        let running = driftbridge::serve::start(&env.config, true).await.unwrap();
        let http = reqwest::Client::new();
        let id = conversation_ids(&env.sim)[1];
        let resp: serde_json::Value = http
            .post(format!("http://{}/webhooks/drift", running.addr))
            .json(&push(org(&env.sim), id, 1))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let event_id = resp["event_id"].as_i64().unwrap();
        let store = running.queue.store().clone();
        drained(&store, Duration::from_secs(30)).await;
        let before = store.table_counts().await.unwrap();
        driftbridge::ops::replay_event(&env.config, event_id)
            .await
            .unwrap();
        driftbridge::ops::replay_conversation(&env.config, id.0, None, &[])
            .await
            .unwrap();
        drained(&store, Duration::from_secs(30)).await;
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM jobs WHERE state = 'done'").await,
            3
        );
        let after = store.table_counts().await.unwrap();
        let rows = |c: &[(&str, i64)]| -> Vec<(String, i64)> {
            c.iter()
                .filter(|(t, _)| *t != "jobs")
                .map(|(t, n)| (t.to_string(), *n))
                .collect()
        };
        assert_eq!(rows(&before), rows(&after), "{backend:?}");
        assert_ground_truth(&store, &env.sim, &[id]).await;
        let e = driftbridge::ops::replay_event(&env.config, 999_999)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no stored event 999999"), "{e}");
        running.stop().await;
    }
}
