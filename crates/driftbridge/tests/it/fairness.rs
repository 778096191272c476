//! Fairness across tenants: one org's backlog, bound by its own Drift budget, does not hold
//! the workers that other orgs' events need.

use std::net::SocketAddr;
use std::time::Duration;

use bridge_store::testing::BACKENDS;
use drift_sim::{RateLimitConfig, SimConfig};
use drift_types::{OrgId, Secret};

use crate::helpers::{config_for, conversation_ids_of, post, push, wait_until};

/// A backlog the busy org cannot clear for an hour at its budget (about four calls a job at
/// 600 calls a minute).
const BACKLOG: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_for_each_of_nineteen_orgs_completes_while_one_org_has_a_budget_bound_backlog() {
    for &backend in BACKENDS {
        let Some(db) = bridge_store::testing::fresh(backend).await else {
            continue;
        };
        drift_client::install_crypto();
        let mut sc = SimConfig::unlimited(3);
        sc.data.orgs = 20;
        // Drift's limit per token, enforced by the simulator; driftbridge paces to the same.
        sc.rate_limit = RateLimitConfig {
            per_minute: 600,
            burst: None,
        };
        let sim = drift_sim::spawn(sc, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let mut config = config_for(&db.url, &sim);
        config.drift.token = None;
        config.drift.tokens = sim
            .state
            .private_tokens
            .iter()
            .map(|(o, t)| (o.0.to_string(), Secret::new(t.clone())))
            .collect();
        config.drift.rate_limit_per_minute = 600;
        config.workers.concurrency = 8;
        let orgs: Vec<OrgId> = sim.state.private_tokens.keys().copied().collect();
        assert_eq!(orgs.len(), 20);
        let (busy, others) = (orgs[0], &orgs[1..]);

        // The busy org's backlog, queued before anything else.
        let queue = driftbridge::serve::open_queue(&config).await.unwrap();
        let ids = conversation_ids_of(&sim, busy);
        let mut tx = queue.store().begin().await.unwrap();
        for n in 0..BACKLOG {
            let job = bridge_core::jobs::sync_job(busy, ids[n % ids.len()]);
            queue.enqueue(&mut tx, &job, 0).await.unwrap();
        }
        tx.commit().await.unwrap();

        let running = driftbridge::serve::start(&config, true).await.unwrap();
        let store = running.queue.store().clone();
        // The backlog is under way (and has spent the busy org's budget) before the pushes.
        wait_until("the backlog under way", Duration::from_secs(30), || async {
            bridge_store::sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM jobs WHERE state = 'done'",
            )
            .fetch_one(store.pool())
            .await
            .unwrap()
                >= 2
        })
        .await;
        let http = reqwest::Client::new();
        for (n, org) in others.iter().enumerate() {
            let id = conversation_ids_of(&sim, *org)[0];
            assert_eq!(
                post(&http, running.addr, &push(*org, id, n as i64))
                    .await
                    .unwrap(),
                200
            );
        }
        // Every other org's conversation lands while the backlog is still there.
        wait_until(
            "a conversation of each other org",
            Duration::from_secs(60),
            || async {
                let n: i64 = bridge_store::sqlx::query_scalar(
                    "SELECT COUNT(DISTINCT org_id) FROM conversations WHERE org_id <> $1",
                )
                .bind(busy.0)
                .fetch_one(store.pool())
                .await
                .unwrap();
                n == others.len() as i64
            },
        )
        .await;
        let left: i64 = bridge_store::sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE org_id = $1 AND state IN ('queued', 'running')",
        )
        .bind(busy.0)
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert!(
            left > (BACKLOG as i64) / 2,
            "{backend:?}: the backlog is still there ({left} left)"
        );
        // The busy org kept working at its own pace, and nothing failed.
        let busy_done: i64 = bridge_store::sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE org_id = $1 AND state = 'done'",
        )
        .bind(busy.0)
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert!(busy_done > 0, "{backend:?}");
        // Its workers gave their slots back rather than sleep on its budget.
        assert!(
            running.metrics.counter(
                "driftbridge_jobs_budget_deferred_total",
                r#"job="sync_conversation""#
            ) > 0,
            "{backend:?}"
        );
        assert!(
            running
                .queue
                .list(bridge_queue::JobState::Dead, 5)
                .await
                .unwrap()
                .is_empty(),
            "{backend:?}"
        );
        running.stop().await;
        sim.stop().await;
    }
}
