//! Tenants and secrets end to end: the install flow through the simulator's authorize page,
//! the vault, refreshes, disconnects, key rotation and the admin perimeter.

use std::net::SocketAddr;
use std::time::Duration;

use bridge_core::tenants::Tenants;
use bridge_store::vault::{Keyring, MasterKey, Vault};
use bridge_store::{Backend, Store};
use drift_sim::{SimConfig, SimHandle};
use drift_types::{OrgId, Secret};
use driftbridge::config::Config;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::helpers::{count, drained, push, wait_until};

pub struct TenantEnv {
    pub sim: SimHandle,
    pub db: bridge_store::testing::TestDb,
    pub config: Config,
}

/// A simulator with `orgs` orgs and a config whose Drift app is the simulator's, with no
/// configured Drift token: every token comes from an install.
pub async fn tenant_env(backend: Backend, orgs: u32) -> Option<TenantEnv> {
    drift_client::install_crypto();
    let db = bridge_store::testing::fresh(backend).await?;
    let mut sc = SimConfig::unlimited(20);
    sc.data.orgs = orgs;
    let sim = drift_sim::spawn(sc, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = crate::helpers::config_for(&db.url, &sim);
    config.server.listen = format!("127.0.0.1:{port}");
    config.drift.token = None;
    let app = &sim.state.config.app;
    config.oauth.client_id = Some(app.client_id.clone());
    config.oauth.client_secret = Some(app.client_secret.clone());
    config.oauth.redirect_url = Some(format!("http://127.0.0.1:{port}/oauth/callback"));
    config.oauth.authorize_url = format!("{}/authorize", sim.base_url());
    config.admin.token = Some(Secret::new("admin-token-for-tests-0123456789"));
    Some(TenantEnv { sim, db, config })
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Starts an install; answers the state cookie and the simulator's authorize URL.
pub async fn begin_install(addr: SocketAddr) -> (String, reqwest::Url) {
    let r = http()
        .get(format!("http://{addr}/oauth/install"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let cookie = r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let to: reqwest::Url = r.headers()[LOCATION].to_str().unwrap().parse().unwrap();
    (cookie, to)
}

/// Clicks approve (or deny) on the simulator's page for `org`; answers the callback URL.
pub async fn decide(
    sim: &SimHandle,
    authorize: &reqwest::Url,
    org: OrgId,
    approve: bool,
) -> String {
    let page = http().get(authorize.clone()).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let q: std::collections::HashMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    let r = http()
        .post(format!("{}/authorize", sim.base_url()))
        .form(&[
            ("client_id", q["client_id"].as_str()),
            ("redirect_uri", q["redirect_uri"].as_str()),
            ("state", q["state"].as_str()),
            ("org_id", &org.0.to_string()),
            ("decision", if approve { "approve" } else { "deny" }),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection());
    r.headers()[LOCATION].to_str().unwrap().to_owned()
}

async fn callback(url: &str, cookie: Option<&str>) -> (StatusCode, String) {
    let mut r = http().get(url);
    if let Some(c) = cookie {
        r = r.header(COOKIE, c);
    }
    let r = r.send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

/// A whole install of `org` through the simulator.
pub async fn install(sim: &SimHandle, addr: SocketAddr, org: OrgId) {
    let (cookie, authorize) = begin_install(addr).await;
    let cb = decide(sim, &authorize, org, true).await;
    let (status, body) = callback(&cb, Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("is installed"), "{body}");
}

fn orgs(sim: &SimHandle) -> Vec<OrgId> {
    sim.state.private_tokens.keys().copied().collect()
}

async fn stored_tokens(env: &TenantEnv, store: &Store, org: OrgId) -> drift_client::TokenSet {
    tenants_of(&env.config, store)
        .tokens(org)
        .await
        .unwrap()
        .expect("the tenant's tokens")
}

fn tenants_of(config: &Config, store: &Store) -> Tenants {
    driftbridge::serve::tenants_on(config, store.clone(), config.keyring().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_through_the_authorize_page_works_and_every_failure_stores_nothing() {
    let Some(env) = tenant_env(Backend::Sqlite, 1).await else {
        return;
    };
    let org = orgs(&env.sim)[0];
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    // A pool of the test's own: stopping serve closes serve's.
    let store = Store::connect(&env.db.url).await.unwrap();
    let addr = running.addr;
    let nothing_stored = || async {
        assert_eq!(count(&store, "SELECT COUNT(*) FROM tenants").await, 0);
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM tenant_secrets").await,
            0
        );
    };

    // Denied consent.
    let (cookie, authorize) = begin_install(addr).await;
    let cb = decide(&env.sim, &authorize, org, false).await;
    let (status, body) = callback(&cb, Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("declined"), "{body}");
    nothing_stored().await;

    // A callback from a browser that did not start the install, or with another state.
    let (cookie, authorize) = begin_install(addr).await;
    let cb = decide(&env.sim, &authorize, org, true).await;
    let (_, body) = callback(&cb, None).await;
    assert!(body.contains("did not start the install"), "{body}");
    let (other_cookie, _) = begin_install(addr).await;
    let (status, body) = callback(&cb, Some(&other_cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("does not match"), "{body}");
    nothing_stored().await;

    // An expired state cookie (signed with the right key, 11 minutes old).
    let key = MasterKey::parse(env.config.secrets.master_key.as_ref().unwrap())
        .unwrap()
        .derive("oauth state cookie");
    let state: String = cb.split("state=").nth(1).unwrap().to_owned();
    let expired = bridge_web::oauth::state_cookie(&key, &state, drift_types::now_ms() - 60_000);
    let (_, body) = callback(&cb, Some(&format!("driftbridge_oauth_state={expired}"))).await;
    assert!(body.contains("expired"), "{body}");
    nothing_stored().await;

    // A code Drift refuses to exchange.
    let bad = cb.replace("code=", "code=not-a-real-code");
    let (status, body) = callback(&bad, Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.contains("exchanging the code"), "{body}");
    nothing_stored().await;

    // The real thing, with a fresh install (codes are one-shot).
    install(&env.sim, addr, org).await;
    let t = tenants_of(&env.config, &store)
        .get(org)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.status, "active");
    assert!(
        t.scopes
            .as_deref()
            .unwrap_or("")
            .contains("conversation_read"),
        "{t:?}"
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM tenant_secrets").await,
        2
    );

    // Its first sync runs on the installed token (no Drift token is configured).
    let id = crate::helpers::conversation_ids(&env.sim)[0];
    let http = reqwest::Client::new();
    assert_eq!(
        crate::helpers::post(&http, addr, &push(org, id, 1))
            .await
            .unwrap(),
        200
    );
    drained(&store, Duration::from_secs(30)).await;
    crate::helpers::assert_ground_truth(&store, &env.sim, &[id]).await;
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM jobs WHERE state = 'dead'").await,
        0
    );

    // Admin routes need the admin token; the audit shows the token's use.
    let m = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), StatusCode::UNAUTHORIZED);
    let m = http
        .get(format!("http://{addr}/admin/api/tenants"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), StatusCode::UNAUTHORIZED);
    let m = http
        .get(format!("http://{addr}/admin/api/tenants"))
        .bearer_auth(env.config.admin.token.as_ref().unwrap().expose())
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), StatusCode::OK);
    let body: serde_json::Value = m.json().await.unwrap();
    assert_eq!(body["tenants"][0]["org_id"], org.0);
    running.stop().await;
    let audit = tenants_of(&env.config, &store).audit(org).await.unwrap();
    assert!(
        audit.iter().any(|a| a.purpose == "jobs" && a.calls > 0),
        "{audit:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_ciphertexts_open_for_neither_tenant_and_nothing_reaches_drift() {
    let Some(env) = tenant_env(Backend::Sqlite, 2).await else {
        return;
    };
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    // A pool of the test's own: stopping serve closes serve's.
    let store = Store::connect(&env.db.url).await.unwrap();
    let [a, b] = orgs(&env.sim)[..] else { panic!() };
    install(&env.sim, running.addr, a).await;
    install(&env.sim, running.addr, b).await;
    running.stop().await;

    let store2 = Store::connect(&env.db.url).await.unwrap();
    let sealed = |o: OrgId| {
        let s = store2.clone();
        async move {
            bridge_store::sqlx::query_scalar::<_, String>(
                "SELECT sealed FROM tenant_secrets WHERE org_id = $1 AND kind = 'drift_access_token'",
            )
            .bind(o.0)
            .fetch_one(s.pool())
            .await
            .unwrap()
        }
    };
    let (sa, sb) = (sealed(a).await, sealed(b).await);
    for (o, v) in [(a, &sb), (b, &sa)] {
        bridge_store::sqlx::query("UPDATE tenant_secrets SET sealed = $1 WHERE org_id = $2 AND kind = 'drift_access_token'")
            .bind(v)
            .bind(o.0)
            .execute(store2.pool())
            .await
            .unwrap();
    }
    // A secret moved to another kind does not open either.
    let tenants = tenants_of(&env.config, &store2);
    for o in [a, b] {
        let e = tenants.tokens(o).await.unwrap_err().to_string();
        assert!(e.contains("altered or moved"), "{e}");
    }
    *env.sim.state.log.lock() = Default::default();
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    let id = crate::helpers::conversation_ids(&env.sim)[0];
    let http = reqwest::Client::new();
    crate::helpers::post(&http, running.addr, &push(a, id, 1))
        .await
        .unwrap();
    wait_until("the job to fail", Duration::from_secs(20), || async {
        count(
            &store,
            "SELECT COUNT(*) FROM jobs WHERE attempts > 0 AND last_error IS NOT NULL",
        )
        .await
            > 0
    })
    .await;
    let err: String = bridge_store::sqlx::query_scalar(
        "SELECT last_error FROM jobs WHERE last_error IS NOT NULL",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(err.contains("altered or moved"), "{err}");
    running.stop().await;
    // Nothing was sent to Drift's API at all, so no wrong token either.
    let log = env.sim.state.log.lock();
    assert_eq!(log.count_status(401), 0);
    assert!(
        log.recent
            .iter()
            .all(|r| !r.route.starts_with("/conversations")),
        "a request reached Drift"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_jobs_across_an_expiry_refresh_once_and_the_rotated_token_survives_a_restart() {
    let Some(env) = tenant_env(Backend::Sqlite, 1).await else {
        return;
    };
    let org = orgs(&env.sim)[0];
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    // A pool of the test's own: stopping serve closes serve's.
    let store = Store::connect(&env.db.url).await.unwrap();
    install(&env.sim, running.addr, org).await;
    let tokens = stored_tokens(&env, &store, org).await;
    assert!(
        env.sim
            .state
            .auth
            .lock()
            .expire(tokens.access_token.expose(), std::time::Instant::now())
    );
    let before = env.sim.state.auth.lock().refreshes;
    let ids = crate::helpers::conversation_ids(&env.sim);
    let http = reqwest::Client::new();
    let posts = (0..100).map(|n| {
        let body = push(org, ids[n % ids.len()], n as i64);
        let http = http.clone();
        let addr = running.addr;
        async move { crate::helpers::post(&http, addr, &body).await.unwrap() }
    });
    for s in futures::future::join_all(posts).await {
        assert_eq!(s, 200);
    }
    drained(&store, Duration::from_secs(60)).await;
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM jobs WHERE state = 'dead'").await,
        0
    );
    assert_eq!(
        env.sim.state.auth.lock().refreshes - before,
        1,
        "exactly one refresh"
    );
    // The rotated refresh token was committed before use: a new process refreshes with it.
    running.stop().await;
    let stored = stored_tokens(&env, &store, org).await;
    assert_ne!(stored.access_token, tokens.access_token);
    assert!(
        env.sim
            .state
            .auth
            .lock()
            .expire(stored.access_token.expose(), std::time::Instant::now())
    );
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    assert_eq!(
        crate::helpers::post(&http, running.addr, &push(org, ids[0], 1000))
            .await
            .unwrap(),
        200
    );
    drained(&store, Duration::from_secs(30)).await;
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM jobs WHERE state = 'dead'").await,
        0
    );
    assert_eq!(env.sim.state.auth.lock().refreshes - before, 2);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_disconnected_deletes_the_secrets_cancels_the_jobs_and_revokes_the_token() {
    let Some(env) = tenant_env(Backend::Sqlite, 1).await else {
        return;
    };
    let org = orgs(&env.sim)[0];
    // No workers yet: the disconnect and five pushes behind it stay queued.
    let running = driftbridge::serve::start(&env.config, false).await.unwrap();
    // A pool of the test's own: stopping serve closes serve's.
    let store = Store::connect(&env.db.url).await.unwrap();
    install(&env.sim, running.addr, org).await;
    let token = stored_tokens(&env, &store, org).await.access_token;
    let http = reqwest::Client::new();
    let ev = drift_types::WebhookEnvelope::new(
        &drift_types::WebhookEvent::AppDisconnected(drift_types::webhook::AppDisconnected {
            org_id: Some(org),
            app_id: Some("driftbridge-sim-app".into()),
            disconnected_at: None,
        }),
        org,
        Some(Secret::new(crate::helpers::VERIFY)),
    );
    let body = serde_json::to_value(ev).unwrap();
    assert_eq!(
        crate::helpers::post(&http, running.addr, &body)
            .await
            .unwrap(),
        200
    );
    for (n, id) in crate::helpers::conversation_ids(&env.sim)
        .iter()
        .take(5)
        .enumerate()
    {
        crate::helpers::post(&http, running.addr, &push(org, *id, n as i64))
            .await
            .unwrap();
    }
    running.stop().await;
    // One worker: the disconnect (queued first) runs first and cancels the pushes.
    let mut one = env.config.clone();
    one.workers.concurrency = 1;
    let running = driftbridge::serve::start(&one, true).await.unwrap();
    wait_until("the disconnect", Duration::from_secs(30), || async {
        count(
            &store,
            "SELECT COUNT(*) FROM tenants WHERE status = 'revoked'",
        )
        .await
            == 1
    })
    .await;
    drained(&store, Duration::from_secs(30)).await;
    running.stop().await;
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM tenant_secrets").await,
        0
    );
    assert_eq!(count(&store, "SELECT COUNT(*) FROM tenant_keys").await, 0);
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM jobs WHERE state = 'queued'").await,
        0
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM jobs WHERE state = 'cancelled'"
        )
        .await,
        5
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM conversations").await,
        0,
        "nothing fetched after the disconnect"
    );
    let rec = env
        .sim
        .state
        .auth
        .lock()
        .get(token.expose())
        .cloned()
        .unwrap();
    assert!(rec.revoked, "the simulator shows the token revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_under_load_fails_no_job_and_the_old_key_can_go() {
    let Some(env) = tenant_env(Backend::Sqlite, 2).await else {
        return;
    };
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    // A pool of the test's own: stopping serve closes serve's.
    let store = Store::connect(&env.db.url).await.unwrap();
    let all = orgs(&env.sim);
    for o in &all {
        install(&env.sim, running.addr, *o).await;
    }
    let old = env.config.secrets.master_key.clone().unwrap();
    let new = MasterKey::generate().unwrap();
    let mut rotated = env.config.clone();
    rotated.secrets.master_key = Some(new.clone());
    rotated.secrets.old_master_keys = vec![old];
    let ids = crate::helpers::conversation_ids(&env.sim);
    let http = reqwest::Client::new();
    let addr = running.addr;
    let load = async {
        for n in 0..120 {
            let org = all[n % all.len()];
            // conversation ids are per org in the simulator: use the first org's for both;
            // a conversation the other org lacks ends as a permanent 404, which would count
            // as failed, so stay with the first org's ids on the first org.
            let body = push(org, ids[n % ids.len()], n as i64);
            if org == all[0] {
                crate::helpers::post(&http, addr, &body).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let rotate = driftbridge::ops::keys_rotate(&rotated);
    let ((), r) = tokio::join!(load, rotate);
    r.unwrap();
    drained(&store, Duration::from_secs(60)).await;
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM jobs WHERE state = 'dead'").await,
        0
    );
    running.stop().await;
    // With only the new key, every secret still opens.
    let only_new = Keyring {
        primary: MasterKey::parse(&new).unwrap(),
        old: vec![],
    };
    let tenants = Tenants::new(
        store.clone(),
        std::sync::Arc::new(Vault::new(only_new)),
        None,
    );
    for o in &all {
        assert!(tenants.tokens(*o).await.unwrap().is_some());
    }
    let id_of_new: String = MasterKey::parse(&new).unwrap().id().to_owned();
    let n: i64 = bridge_store::sqlx::query_scalar(
        "SELECT COUNT(*) FROM tenant_keys WHERE master_key_id <> $1",
    )
    .bind(id_of_new)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn serve_refuses_to_start_without_a_master_key_and_says_how_to_make_one() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftbridge"))
        .args(["serve", "--database-url", "sqlite::memory:"])
        .env("DRIFTBRIDGE_DRIFT__VERIFICATION_TOKENS", "[\"v\"]")
        .env_remove("DRIFTBRIDGE_MASTER_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("driftbridge keys generate"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftbridge"))
        .args(["keys", "generate"])
        .output()
        .unwrap();
    let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(key.len(), 64);
    assert!(MasterKey::parse(&Secret::new(key)).is_ok());
}

/// A child process killed (SIGKILL) when dropped, so a failing test leaves none behind.
struct Killed(std::process::Child);

impl Killed {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The environment that makes a child `driftbridge` process use `env`'s config.
fn child_env(env: &TenantEnv) -> Vec<(&'static str, String)> {
    let c = &env.config;
    vec![
        ("DRIFTBRIDGE_DATABASE__URL", env.db.url.clone()),
        ("DRIFTBRIDGE_SERVER__LISTEN", c.server.listen.clone()),
        ("DRIFTBRIDGE_DRIFT__BASE_URL", c.drift.base_url.clone()),
        ("DRIFTBRIDGE_DRIFT__RATE_LIMIT_PER_MINUTE", "0".into()),
        (
            "DRIFTBRIDGE_DRIFT__VERIFICATION_TOKENS",
            format!("[\"{}\"]", crate::helpers::VERIFY),
        ),
        (
            "DRIFTBRIDGE_MASTER_KEY",
            c.secrets.master_key.as_ref().unwrap().expose().into(),
        ),
        (
            "DRIFTBRIDGE_OAUTH__CLIENT_ID",
            c.oauth.client_id.clone().unwrap(),
        ),
        (
            "DRIFTBRIDGE_OAUTH__CLIENT_SECRET",
            c.oauth.client_secret.as_ref().unwrap().expose().into(),
        ),
        (
            "DRIFTBRIDGE_OAUTH__REDIRECT_URL",
            c.oauth.redirect_url.clone().unwrap(),
        ),
        (
            "DRIFTBRIDGE_OAUTH__AUTHORIZE_URL",
            c.oauth.authorize_url.clone(),
        ),
        (
            "DRIFTBRIDGE_ADMIN__TOKEN",
            c.admin.token.as_ref().unwrap().expose().into(),
        ),
        ("DRIFTBRIDGE_WORKERS__POLL_INTERVAL_MS", "50".into()),
        ("RUST_LOG", "debug".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_planted_secret_is_in_the_database_its_wal_or_the_logs() {
    let Some(env) = tenant_env(Backend::Sqlite, 3).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let c = &env.config;
    let wrong_admin = "wrong-admin-token-presented-by-an-attacker";
    let vars = child_env(&env);
    let run = |args: &[&str], log: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_driftbridge"));
        cmd.args(args)
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::fs::File::create(dir.path().join(format!("{log}.out"))).unwrap())
            .stderr(std::fs::File::create(dir.path().join(format!("{log}.err"))).unwrap());
        cmd
    };
    let mut serve = Killed(run(&["serve"], "serve").spawn().unwrap());
    let addr: SocketAddr = c.server.listen.parse().unwrap();
    wait_until("serve", Duration::from_secs(30), || async {
        reqwest::get(format!("http://{addr}/healthz")).await.is_ok()
    })
    .await;
    let all = orgs(&env.sim);
    let http = reqwest::Client::new();
    for o in &all {
        install(&env.sim, addr, *o).await;
        for (n, id) in crate::helpers::conversation_ids_of(&env.sim, *o)
            .iter()
            .take(3)
            .enumerate()
        {
            assert_eq!(
                crate::helpers::post(&http, addr, &push(*o, *id, n as i64))
                    .await
                    .unwrap(),
                200
            );
        }
    }
    let store = Store::connect(&env.db.url).await.unwrap();
    drained(&store, Duration::from_secs(60)).await;
    assert_eq!(count(&store, "SELECT COUNT(*) FROM conversations").await, 9);
    let refused = http
        .get(format!("http://{addr}/admin/api/tenants"))
        .bearer_auth(wrong_admin)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    // A sync per tenant through the CLI, then a disconnect (Drift's uninstall carries the
    // client secret).
    for o in &all {
        let org = o.0.to_string();
        let sync_to = format!(
            "sqlite:{}",
            dir.path().join(format!("sync-{org}.db")).display()
        );
        let st = run(
            &["sync", "--org", &org, "--to", &sync_to],
            &format!("sync-{org}"),
        )
        .status()
        .unwrap();
        assert!(st.success(), "sync of {org}");
    }
    let revoked = all[0].0.to_string();
    assert!(
        run(&["tenants", "revoke", &revoked, "--yes"], "revoke")
            .status()
            .unwrap()
            .success()
    );
    // serve writes the token audit every 5 s; wait for its jobs' uses before the kill.
    wait_until("the audit flush", Duration::from_secs(15), || async {
        count(
            &store,
            "SELECT COUNT(*) FROM token_audit WHERE purpose = 'jobs'",
        )
        .await
            >= 3
    })
    .await;
    serve.kill();
    assert!(
        run(&["tenants", "list"], "list")
            .status()
            .unwrap()
            .success()
    );
    let list = std::fs::read_to_string(dir.path().join("list.out")).unwrap();
    assert_eq!(list.matches("active").count(), 2, "{list}");
    assert_eq!(list.matches("revoked").count(), 1, "{list}");
    let audited = all[1].0.to_string();
    assert!(
        run(&["tenants", "audit", &audited], "audit")
            .status()
            .unwrap()
            .success()
    );
    let audit = std::fs::read_to_string(dir.path().join("audit.out")).unwrap();
    assert!(
        audit.contains("jobs") && audit.contains("export"),
        "{audit}"
    );

    let mut secrets: Vec<String> = vec![
        c.oauth.client_secret.as_ref().unwrap().expose().into(),
        crate::helpers::VERIFY.into(),
        c.secrets.master_key.as_ref().unwrap().expose().into(),
        c.admin.token.as_ref().unwrap().expose().into(),
        wrong_admin.into(),
    ];
    for o in &all {
        let issued = env.sim.state.auth.lock().oauth_tokens_of(*o);
        assert!(!issued.is_empty(), "tokens of {o}");
        secrets.extend(issued);
    }
    let db_path = env.db.url.trim_start_matches("sqlite:").to_owned();
    let mut files = vec![std::path::PathBuf::from(&db_path)];
    let wal = std::path::PathBuf::from(format!("{db_path}-wal"));
    if wal.exists() {
        files.push(wal);
    }
    let mut log_bytes = 0;
    for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "err" || x == "out") {
            log_bytes += std::fs::metadata(&p).unwrap().len();
        }
        files.push(p);
    }
    assert!(
        log_bytes > 10_000,
        "the logs hold {log_bytes} bytes: too little to mean anything"
    );
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        for s in &secrets {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "a secret ({} chars) is in {}",
                s.len(),
                f.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_right_after_a_refresh_leaves_the_tenant_working_on_restart() {
    let Some(env) = tenant_env(Backend::Sqlite, 1).await else {
        return;
    };
    let org = orgs(&env.sim)[0];
    let vars = child_env(&env);
    let spawn = || {
        Killed(
            std::process::Command::new(env!("CARGO_BIN_EXE_driftbridge"))
                .arg("serve")
                .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
                .env("RUST_LOG", "error")
                // The killed process's job waits out its lease before the next one takes it.
                .env("DRIFTBRIDGE_WORKERS__LEASE_SECS", "3")
                .spawn()
                .unwrap(),
        )
    };
    let addr: SocketAddr = env.config.server.listen.parse().unwrap();
    let up = || async {
        wait_until("serve", Duration::from_secs(30), || async {
            reqwest::get(format!("http://{addr}/healthz")).await.is_ok()
        })
        .await
    };
    let mut serve = spawn();
    up().await;
    install(&env.sim, addr, org).await;
    let store = Store::connect(&env.db.url).await.unwrap();
    let first = stored_tokens(&env, &store, org).await;
    assert!(
        env.sim
            .state
            .auth
            .lock()
            .expire(first.access_token.expose(), std::time::Instant::now())
    );
    let refreshes = env.sim.state.auth.lock().refreshes;
    let ids = crate::helpers::conversation_ids_of(&env.sim, org);
    let http = reqwest::Client::new();
    crate::helpers::post(&http, addr, &push(org, ids[0], 1))
        .await
        .unwrap();
    // Kill the moment the refreshed token is first used: by then its refresh token must be
    // on disk.
    wait_until(
        "the refresh and first use",
        Duration::from_secs(30),
        || async {
            env.sim.state.auth.lock().refreshes > refreshes
                && env
                    .sim
                    .state
                    .log
                    .lock()
                    .recent
                    .iter()
                    .any(|r| r.route == "/conversations/{id}" && r.status == 200)
        },
    )
    .await;
    serve.kill();
    // After the restart the tenant refreshes again with what was stored, and works.
    let stored = stored_tokens(&env, &store, org).await;
    assert!(
        env.sim
            .state
            .auth
            .lock()
            .expire(stored.access_token.expose(), std::time::Instant::now())
    );
    let mut serve = spawn();
    up().await;
    crate::helpers::post(&http, addr, &push(org, ids[1], 2))
        .await
        .unwrap();
    drained(&store, Duration::from_secs(30)).await;
    serve.kill();
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM jobs WHERE state = 'dead'").await,
        0
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM jobs WHERE state = 'done'").await,
        2,
        "both syncs ran, the second after a refresh with the stored token"
    );
    assert_eq!(env.sim.state.auth.lock().refreshes, refreshes + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_whose_refresh_token_another_process_spent_takes_the_stored_one() {
    let Some(env) = tenant_env(Backend::Sqlite, 1).await else {
        return;
    };
    let org = orgs(&env.sim)[0];
    let running = driftbridge::serve::start(&env.config, false).await.unwrap();
    install(&env.sim, running.addr, org).await;
    running.stop().await;
    let store = Store::connect(&env.db.url).await.unwrap();
    // Two processes' pools over one database, both holding the installed token pair.
    let pool = || {
        bridge_core::drift::DriftPool::new(env.config.drift())
            .with_tenants(tenants_of(&env.config, &store))
    };
    let (a, b) = (pool(), pool());
    let ca = a.client(org).await.unwrap();
    let cb = b.client(org).await.unwrap();
    let first = stored_tokens(&env, &store, org).await;
    assert!(
        env.sim
            .state
            .auth
            .lock()
            .expire(first.access_token.expose(), std::time::Instant::now())
    );
    let before = env.sim.state.auth.lock().refreshes;
    // A meets the expiry first, refreshes (rotating the refresh token) and stores the pair.
    ca.users().await.unwrap();
    // B's refresh token is now spent; it must pick up A's pair instead of failing.
    cb.users().await.unwrap();
    assert_eq!(
        env.sim.state.auth.lock().refreshes - before,
        1,
        "B did not refresh again"
    );
    assert_eq!(env.sim.state.log.lock().count_status(401), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_key_that_does_not_parse_is_an_error_not_a_silent_run_without_tenants() {
    let sim = crate::export::sim(5).await;
    let dir = tempfile::tempdir().unwrap();
    let run = |key: Option<&str>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_driftbridge"));
        c.args(["export", "--tables", "users", "--org"])
            .arg(sim.state.default_org().0.to_string())
            .arg("--to")
            .arg(format!("jsonl:{}", dir.path().join("out").display()))
            .args(["--database-url"])
            .arg(format!("sqlite:{}", dir.path().join("db.sqlite").display()))
            .env("DRIFTBRIDGE_DRIFT__BASE_URL", sim.base_url())
            .env("DRIFTBRIDGE_DRIFT__TOKEN", sim.token())
            .env("DRIFTBRIDGE_DRIFT__RATE_LIMIT_PER_MINUTE", "0")
            .env_remove("DRIFTBRIDGE_MASTER_KEY");
        if let Some(k) = key {
            c.env("DRIFTBRIDGE_MASTER_KEY", k);
        }
        c.output().unwrap()
    };
    let out = run(Some("not-a-master-key"));
    assert!(
        !out.status.success(),
        "a malformed key must stop the command"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("secrets.master_key") && err.contains("64 hex digits"),
        "{err}"
    );
    // Without any key the export runs on configured tokens alone.
    let out = run(None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // Its log went to a pipe, not a terminal: plain text, no colour codes.
    assert!(err.contains("export starting"), "{err}");
    assert!(!err.contains('\x1b'), "ANSI codes in a piped log: {err:?}");
}

#[test]
fn config_check_names_every_unknown_key_with_its_variable_and_passes_a_good_config() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[(&str, &str)]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_driftbridge"));
        c.args(["config", "check"]).current_dir(dir.path());
        for (k, v) in extra {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let out = run(&[
        ("DRIFTBRIDGE_WORKERS__CONCURENCY", "3"),
        ("DRIFTBRIDGE_DRIFT__BASE_UR", "http://x"),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown key workers.concurency from DRIFTBRIDGE_WORKERS__CONCURENCY")
            && err.contains("did you mean workers.concurrency?"),
        "{err}"
    );
    assert!(
        err.contains("unknown key drift.base_ur") && err.contains("drift.base_url?"),
        "{err}"
    );
    let out = run(&[("DRIFTBRIDGE_WORKERS__CONCURRENCY", "3")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration is valid"));
}

#[test]
fn operator_commands_on_a_database_that_does_not_exist_say_so_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo.db");
    for args in [
        &["jobs", "dead"][..],
        &["tenants", "list"][..],
        &["replay", "--event", "1"][..],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftbridge"))
            .args(args)
            .arg("--database-url")
            .arg(format!("sqlite:{}", missing.display()))
            .env("DRIFTBRIDGE_MASTER_KEY", "ab".repeat(32))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("no database at") && err.contains("typo.db"),
            "{args:?}: {err}"
        );
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_export_of_an_installed_tenant_needs_no_configured_token_or_org() {
    let Some(env) = tenant_env(Backend::Sqlite, 1).await else {
        return;
    };
    let running = driftbridge::serve::start(&env.config, false).await.unwrap();
    let org = orgs(&env.sim)[0];
    install(&env.sim, running.addr, org).await;
    running.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_driftbridge"));
    c.args(["export", "--tables", "users", "--to"])
        .arg(format!("jsonl:{}", dir.path().join("out").display()));
    for (k, v) in child_env(&env) {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("org.id={}", org.0)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_after_a_disconnect_is_kept_and_its_job_completes_without_a_call() {
    let Some(env) = tenant_env(Backend::Sqlite, 1).await else {
        return;
    };
    let org = orgs(&env.sim)[0];
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    // A pool of the test's own: stopping serve closes serve's.
    let store = Store::connect(&env.db.url).await.unwrap();
    install(&env.sim, running.addr, org).await;
    let tenants = tenants_of(&env.config, &store);
    tenants
        .revoke(org, &env.sim.base_url(), "a test")
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let id = crate::helpers::conversation_ids(&env.sim)[0];
    assert_eq!(
        crate::helpers::post(&http, running.addr, &push(org, id, 1))
            .await
            .unwrap(),
        200
    );
    drained(&store, Duration::from_secs(30)).await;
    running.stop().await;
    // The disconnect is the reason, not a missing token: the job is done, not a dead letter.
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM jobs WHERE state = 'done'").await,
        1
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM jobs WHERE state = 'dead'").await,
        0
    );
    assert_eq!(count(&store, "SELECT COUNT(*) FROM conversations").await, 0);
}
