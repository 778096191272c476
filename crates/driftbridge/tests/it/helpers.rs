//! Shared test setup: a simulator, a fresh database, a config that points at both, and
//! readers of the warehouse and of the simulator's ground truth.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use bridge_store::testing::TestDb;
use bridge_store::{Backend, Store};
use drift_sim::{SimConfig, SimHandle};
use drift_types::webhook::{ConversationPush, PushDetails};
use drift_types::{ConversationId, EpochMillis, OrgId, Secret, WebhookEnvelope, WebhookEvent};
use driftbridge::config::{Config, Overrides};
use serde_json::Value;

pub const VERIFY: &str = "test-verification-token";

pub struct Env {
    pub sim: SimHandle,
    pub db: TestDb,
    pub config: Config,
}

pub async fn env(backend: Backend, conversations: u32) -> Option<Env> {
    drift_client::install_crypto();
    let db = bridge_store::testing::fresh(backend).await?;
    let sim = drift_sim::spawn(
        SimConfig::unlimited(conversations),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .expect("simulator");
    let config = config_for(&db.url, &sim);
    Some(Env { sim, db, config })
}

pub fn config_for(db_url: &str, sim: &SimHandle) -> Config {
    config_with(db_url, sim, None)
}

/// [`config_for`] with a config file read first (for sections such as `[sinks]`).
pub fn config_with(db_url: &str, sim: &SimHandle, file: Option<&std::path::Path>) -> Config {
    let mut c = Config::load(
        file,
        &Overrides {
            database_url: Some(db_url.to_owned()),
            listen: Some("127.0.0.1:0".into()),
        },
    )
    .expect("config");
    c.drift.base_url = sim.base_url();
    c.drift.token = Some(Secret::new(sim.token()));
    c.drift.verification_tokens = vec![Secret::new(VERIFY)];
    c.drift.rate_limit_per_minute = 0;
    c.secrets.master_key = Some(bridge_store::vault::MasterKey::generate().expect("key"));
    c.workers.poll_interval_ms = 50;
    c.workers.backoff_base_ms = 50;
    c.workers.backoff_cap_secs = 1;
    c.workers.shutdown_grace_secs = 2;
    c
}

pub fn org(sim: &SimHandle) -> OrgId {
    sim.state.default_org()
}

/// The ids of the default org's conversations, oldest id first.
pub fn conversation_ids(sim: &SimHandle) -> Vec<ConversationId> {
    conversation_ids_of(sim, org(sim))
}

/// The ids of `org`'s conversations, oldest id first.
pub fn conversation_ids_of(sim: &SimHandle, org: OrgId) -> Vec<ConversationId> {
    let world = sim.state.world.lock();
    let mut ids: Vec<_> = world
        .org(org)
        .expect("org")
        .conversations
        .keys()
        .copied()
        .collect();
    ids.sort();
    ids
}

/// The event as Drift posts it to `org`'s app: in its envelope, with the verification token.
pub fn signed(ev: &WebhookEvent, org: OrgId) -> Value {
    serde_json::to_value(WebhookEnvelope::new(ev, org, Some(Secret::new(VERIFY))))
        .expect("envelope")
}

/// A `conversation_push` envelope for the conversation, `n` making it distinct.
pub fn push(org: OrgId, id: ConversationId, n: i64) -> Value {
    let ev = WebhookEvent::ConversationPush(ConversationPush {
        source: Some("conversation_closed".into()),
        data: PushDetails {
            conversation_id: id,
            user_id: None,
            pushed_at: Some(EpochMillis(1_700_000_000_000 + n)),
        },
    });
    signed(&ev, org)
}

pub async fn post(http: &reqwest::Client, addr: SocketAddr, body: &Value) -> reqwest::Result<u16> {
    Ok(http
        .post(format!("http://{addr}/webhooks/drift"))
        .json(body)
        .send()
        .await?
        .status()
        .as_u16())
}

pub async fn count(store: &Store, sql: &'static str) -> i64 {
    bridge_store::sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .expect(sql)
}

/// Every listed conversation is in the warehouse exactly as the simulator holds it: status,
/// participants, every message once, and a transcript.
pub async fn assert_ground_truth(store: &Store, sim: &SimHandle, ids: &[ConversationId]) {
    let org = org(sim);
    for id in ids {
        let (status, participants, messages) = {
            let world = sim.state.world.lock();
            let rec = &world.org(org).unwrap().conversations[id];
            let p: BTreeSet<i64> = rec.conversation.participants.iter().map(|u| u.0).collect();
            let m: BTreeSet<i64> = rec.messages.iter().map(|m| m.id.0).collect();
            (rec.conversation.status.as_str().to_owned(), p, m)
        };
        let got_status: String = bridge_store::sqlx::query_scalar(
            "SELECT status FROM conversations WHERE org_id = $1 AND id = $2",
        )
        .bind(org.0)
        .bind(id.0)
        .fetch_one(store.pool())
        .await
        .unwrap_or_else(|e| panic!("conversation {id} missing: {e}"));
        assert_eq!(got_status, status, "status of {id}");
        let got_p: Vec<i64> = bridge_store::sqlx::query_scalar(
            "SELECT user_id FROM conversation_participants WHERE org_id = $1 AND conversation_id = $2",
        )
        .bind(org.0)
        .bind(id.0)
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(
            got_p.into_iter().collect::<BTreeSet<_>>(),
            participants,
            "participants of {id}"
        );
        let got_m: Vec<i64> = bridge_store::sqlx::query_scalar(
            "SELECT id FROM messages WHERE org_id = $1 AND conversation_id = $2",
        )
        .bind(org.0)
        .bind(id.0)
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(got_m.len(), messages.len(), "message rows of {id}");
        assert_eq!(
            got_m.into_iter().collect::<BTreeSet<_>>(),
            messages,
            "messages of {id}"
        );
        let t: i64 = bridge_store::sqlx::query_scalar(
            "SELECT COUNT(*) FROM transcripts WHERE org_id = $1 AND conversation_id = $2",
        )
        .bind(org.0)
        .bind(id.0)
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(t, 1, "transcript of {id}");
    }
}

pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + limit;
    while !f().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until no job is queued or running.
pub async fn drained(store: &Store, limit: Duration) {
    wait_until("the queue to drain", limit, || async {
        count(
            store,
            "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')",
        )
        .await
            == 0
    })
    .await;
}
