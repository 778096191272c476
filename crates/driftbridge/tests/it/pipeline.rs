//! Events through serve's workers into the warehouse, under faults.

use std::time::Duration;

use bridge_queue::JobState;
use bridge_store::testing::BACKENDS;
use drift_sim::{FaultRule, lock};

use crate::helpers::*;

#[tokio::test]
async fn pushes_under_20_percent_faults_drain_and_match_the_ground_truth() {
    for backend in BACKENDS {
        let Some(env) = env(*backend, 30).await else {
            continue;
        };
        lock(&env.sim.state.faults).set(vec![FaultRule {
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
        wait_until("the queue to drain", Duration::from_secs(120), || {
            let q = q.clone();
            async move { q.pending().await.unwrap() == 0 }
        })
        .await;
        let injected = lock(&env.sim.state.faults).injected;
        assert!(
            injected > 20,
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
        lock(&env.sim.state.faults).set(vec![FaultRule {
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

        lock(&env.sim.state.faults).set(Vec::new());
        driftbridge::ops::jobs_retry(&env.config, dead[0].id)
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
