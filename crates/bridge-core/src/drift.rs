//! One Drift client per org, each with its own request budget (Drift limits per token), and a
//! per-org cache of users so a burst of conversations does not fetch the same agents again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use drift_client::{
    ClientConfig, DriftClient, RateBudget, RefreshingToken, StaticToken, TokenSet, TokenSource,
};
use drift_types::{OrgId, Playbook, PlaybookId, Secret, User, UserId};
use futures::future::BoxFuture;

use crate::tenants::Tenants;

/// How long a fetched user is trusted: agents' names and availability change rarely, and
/// `user_availability_updated` refreshes the one that changed.
const USER_TTL: Duration = Duration::from_secs(600);

/// Where Drift is and which token speaks for which org.
#[derive(Clone, Debug)]
pub struct DriftConfig {
    /// REST base URL.
    pub base_url: String,
    /// Private-app token used for any org without its own.
    pub default_token: Option<Secret>,
    /// Tokens per org.
    pub tokens: BTreeMap<i64, Secret>,
    /// Requests per minute per token.
    pub rate_limit_per_minute: u32,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Retries of one call (5xx, resets, 429) before the job attempt fails.
    pub max_retries: u32,
    /// Longest wait for room in an org's request budget before a call gives up
    /// (`None`: wait as long as it takes). Jobs use [`JOB_BUDGET_WAIT`].
    pub max_budget_wait: Option<Duration>,
}

/// How long a job waits for room in its org's Drift budget before it gives its worker back
/// (and is deferred until there is room): a quarter of a second, the pace of two calls at
/// Drift's 600 a minute, so a job's few calls go through while a backlog that has spent its
/// budget never holds a worker that another org's event needs.
pub const JOB_BUDGET_WAIT: Duration = Duration::from_millis(250);

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            base_url: "https://driftapi.com".into(),
            default_token: None,
            tokens: BTreeMap::new(),
            rate_limit_per_minute: 600,
            timeout: Duration::from_secs(30),
            max_retries: 6,
            max_budget_wait: None,
        }
    }
}

/// An org's playbooks and when they were fetched.
type PlaybookList = (Arc<Vec<Playbook>>, Instant);

/// An org this process may not act for: it has not installed the app, and no configured
/// token belongs to it. A Drift token speaks for one org only.
#[derive(Debug, thiserror::Error)]
#[error("org {org} is not served here: {why}")]
pub struct OrgNotServed {
    /// The org asked for.
    pub org: OrgId,
    /// Why not.
    pub why: String,
}

/// Clients by org plus the user cache.
#[derive(Debug)]
pub struct DriftPool {
    config: DriftConfig,
    tenants: Option<Tenants>,
    purpose: String,
    /// The org `drift.token` belongs to, once Drift said so.
    default_org: Mutex<Option<OrgId>>,
    /// Orgs whose `drift.tokens` entry Drift confirmed belongs to them.
    verified: Mutex<HashSet<OrgId>>,
    clients: Mutex<HashMap<OrgId, Arc<DriftClient>>>,
    users: Mutex<HashMap<(OrgId, UserId), (User, Instant)>>,
    playbooks: Mutex<HashMap<OrgId, PlaybookList>>,
}

impl DriftPool {
    /// A pool for the config; tokens come from the config only.
    pub fn new(config: DriftConfig) -> Self {
        Self {
            config,
            tenants: None,
            purpose: "jobs".into(),
            default_org: Mutex::default(),
            verified: Mutex::default(),
            clients: Mutex::default(),
            users: Mutex::default(),
            playbooks: Mutex::default(),
        }
    }

    /// Installed tenants' tokens (from the vault) take precedence over configured ones.
    pub fn with_tenants(mut self, tenants: Tenants) -> Self {
        self.tenants = Some(tenants);
        self
    }

    /// What this pool's calls are for, in the token audit (`jobs`, `export`, ...).
    pub fn with_purpose(mut self, purpose: &str) -> Self {
        self.purpose = purpose.into();
        self
    }

    /// The tenants, when the pool has them.
    pub fn tenants(&self) -> Option<&Tenants> {
        self.tenants.as_ref()
    }

    /// The configured Drift base URL.
    pub fn base_url(&self) -> &str {
        &self.config.base_url
    }

    /// Asks Drift about an access token (its org and scopes).
    pub async fn token_info(&self, token: &Secret) -> anyhow::Result<drift_types::TokenInfo> {
        let mut cc = ClientConfig::with_base_url(&self.config.base_url)
            .context("while reading the Drift base URL")?;
        cc.timeout = self.config.timeout;
        cc.max_retries = self.config.max_retries;
        let c = DriftClient::new(cc, Arc::new(StaticToken(token.clone())))?;
        Ok(c.token_info(token).await?)
    }

    /// The org a token belongs to, as Drift's `token_info` says.
    pub async fn token_org(&self, token: &Secret) -> anyhow::Result<OrgId> {
        let info = self.token_info(token).await?;
        info.authenticated_userid
            .strip_prefix("orgId:")
            .and_then(|s| s.parse().ok())
            .map(OrgId)
            .ok_or_else(|| {
                anyhow!(
                    "Drift's token_info did not name an org ({:?})",
                    info.authenticated_userid
                )
            })
    }

    /// The configured token that may speak for `org`, checked against Drift once per token:
    /// `drift.tokens.ORG` must belong to that org, and `drift.token` is used only for the org
    /// it belongs to. An event claiming another org never borrows it.
    async fn configured_token(&self, org: OrgId) -> anyhow::Result<Secret> {
        if let Some(t) = self.config.tokens.get(&org.0) {
            if !self.verified.lock().contains(&org) {
                let owner = self.token_org(t).await.with_context(|| {
                    format!("while asking Drift which org drift.tokens.{org} belongs to")
                })?;
                if owner != org {
                    return Err(OrgNotServed {
                        org,
                        why: format!("drift.tokens.{org} belongs to org {owner}"),
                    }
                    .into());
                }
                self.verified.lock().insert(org);
            }
            return Ok(t.clone());
        }
        let Some(t) = &self.config.default_token else {
            return Err(OrgNotServed {
                org,
                why: "it has not installed the app and no Drift token is configured for it".into(),
            }
            .into());
        };
        let known = *self.default_org.lock();
        let owner = match known {
            Some(o) => o,
            None => {
                let o = self
                    .token_org(t)
                    .await
                    .context("while asking Drift which org drift.token belongs to")?;
                *self.default_org.lock() = Some(o);
                o
            }
        };
        if owner != org {
            return Err(OrgNotServed {
                org,
                why: format!(
                    "it has not installed the app, and drift.token belongs to org {owner}"
                ),
            }
            .into());
        }
        Ok(t.clone())
    }

    /// Whether this process may act for `org` (an installed tenant, or a configured token
    /// that belongs to it); `Err(OrgNotServed)` says why not.
    pub async fn serves(&self, org: OrgId) -> anyhow::Result<()> {
        self.client(org).await.map(drop)
    }

    /// Whether a configured token (not an install) belongs to `org`, as Drift says: the only
    /// thing that can speak for a disconnected tenant, whose own tokens were deleted.
    pub async fn configured_serves(&self, org: OrgId) -> anyhow::Result<()> {
        self.configured_token(org).await.map(drop)
    }

    /// Drops the org's client (after a disconnect), so the next use reads the vault again.
    pub fn forget_client(&self, org: OrgId) {
        self.clients.lock().remove(&org);
    }

    /// The org's client, created on first use: with the tenant's vault tokens when it
    /// installed the app, else the configured token.
    pub async fn client(&self, org: OrgId) -> anyhow::Result<Arc<DriftClient>> {
        if let Some(c) = self.clients.lock().get(&org) {
            return Ok(c.clone());
        }
        let from_vault = match &self.tenants {
            Some(t) => t.tokens(org).await?,
            None => None,
        };
        let source: Arc<dyn TokenSource> = match (from_vault, &self.tenants) {
            (Some(set), Some(tenants)) => Arc::new(TenantToken::new(
                tenants.clone(),
                org,
                self.purpose.clone(),
                set,
            )),
            _ => Arc::new(StaticToken(self.configured_token(org).await?)),
        };
        let mut clients = self.clients.lock();
        if let Some(c) = clients.get(&org) {
            return Ok(c.clone());
        }
        let mut cc = ClientConfig::with_base_url(&self.config.base_url)
            .context("while reading the Drift base URL")?;
        cc.timeout = self.config.timeout;
        cc.max_retries = self.config.max_retries;
        cc.max_budget_wait = self.config.max_budget_wait;
        cc.budget = RateBudget {
            per_minute: self.config.rate_limit_per_minute,
            burst: None,
        };
        let client = Arc::new(DriftClient::new(cc, source)?);
        clients.insert(org, client.clone());
        Ok(client)
    }

    /// Users by id, from the cache where fresh, else one batched call.
    pub async fn users(&self, org: OrgId, ids: &[UserId]) -> anyhow::Result<Vec<User>> {
        let now = Instant::now();
        let (mut found, missing): (Vec<User>, Vec<UserId>) = {
            let cache = self.users.lock();
            let mut found = Vec::new();
            let mut missing = Vec::new();
            for id in ids {
                match cache.get(&(org, *id)) {
                    Some((u, at)) if now.duration_since(*at) < USER_TTL => found.push(u.clone()),
                    _ => missing.push(*id),
                }
            }
            (found, missing)
        };
        if !missing.is_empty() {
            let fetched = self.client(org).await?.users_by_id(&missing).await?;
            let mut cache = self.users.lock();
            for (id, u) in fetched {
                cache.insert((org, id), (u.clone(), now));
                found.push(u);
            }
        }
        found.sort_by_key(|u| u.id);
        found.dedup_by_key(|u| u.id);
        Ok(found)
    }

    /// A playbook by id, from the org's playbook list (cached like users: playbooks change
    /// rarely and a burst of conversations shares a few).
    pub async fn playbook(&self, org: OrgId, id: PlaybookId) -> anyhow::Result<Option<Playbook>> {
        let now = Instant::now();
        let cached = self
            .playbooks
            .lock()
            .get(&org)
            .filter(|(_, at)| now.duration_since(*at) < USER_TTL)
            .map(|(l, _)| l.clone());
        let list = match cached {
            Some(l) => l,
            None => {
                let l = Arc::new(self.client(org).await?.playbooks().await?);
                self.playbooks.lock().insert(org, (l.clone(), now));
                l
            }
        };
        Ok(list.iter().find(|p| p.id == id).cloned())
    }

    /// Forgets a cached user.
    pub fn forget_user(&self, org: OrgId, id: UserId) {
        self.users.lock().remove(&(org, id));
    }

    /// Per org with a client: responses by status, 429s, and the budget's room right now.
    pub fn org_stats(&self) -> Vec<OrgCalls> {
        let mut out: Vec<OrgCalls> = self
            .clients
            .lock()
            .iter()
            .map(|(org, c)| OrgCalls {
                org: *org,
                requests: c
                    .stats()
                    .requests
                    .load(std::sync::atomic::Ordering::Relaxed),
                rate_limited: c
                    .stats()
                    .rate_limited
                    .load(std::sync::atomic::Ordering::Relaxed),
                budget_room: c.budget_room(),
            })
            .collect();
        out.sort_by_key(|o| o.org);
        out
    }

    /// Drift responses by status, summed over every org's client.
    pub fn status_counts(&self) -> BTreeMap<u16, u64> {
        let mut out = BTreeMap::new();
        for c in self.clients.lock().values() {
            for (s, n) in c.stats().by_status() {
                *out.entry(s).or_default() += n;
            }
        }
        out
    }
}

/// One org's Drift calls through this pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct OrgCalls {
    /// The org.
    pub org: OrgId,
    /// Requests sent (retries included).
    pub requests: u64,
    /// 429 answers.
    pub rate_limited: u64,
    /// Requests the budget allows now without waiting (`None`: no limit configured).
    pub budget_room: Option<u32>,
}

/// A tenant's token: refreshing (single flight, persisted before use) when the OAuth app is
/// configured, counted per use for the audit, and reloaded from the vault when another process
/// rotated the refresh token first.
struct TenantToken {
    tenants: Tenants,
    org: OrgId,
    purpose: String,
    inner: tokio::sync::Mutex<Arc<dyn TokenSource>>,
    /// The access token last handed out.
    last: Mutex<Option<Secret>>,
}

impl std::fmt::Debug for TenantToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantToken")
            .field("org", &self.org)
            .finish_non_exhaustive()
    }
}

impl TenantToken {
    fn new(tenants: Tenants, org: OrgId, purpose: String, set: TokenSet) -> Self {
        let inner = Self::source(&tenants, org, set);
        TenantToken {
            tenants,
            org,
            purpose,
            inner: tokio::sync::Mutex::new(inner),
            last: Mutex::new(None),
        }
    }

    fn source(tenants: &Tenants, org: OrgId, set: TokenSet) -> Arc<dyn TokenSource> {
        match tenants.oauth() {
            Some(app) => Arc::new(
                RefreshingToken::new(app.clone(), set).on_refresh(tenants.persist_refresh(org)),
            ),
            None => Arc::new(StaticToken(set.access_token)),
        }
    }

    /// After a refused refresh: the vault's set, if another process stored a newer one.
    async fn reload(&self) -> drift_client::Result<Option<Arc<dyn TokenSource>>> {
        let stored =
            self.tenants
                .tokens(self.org)
                .await
                .map_err(|e| drift_client::Error::Token {
                    message: format!("could not read the tenant's tokens: {e:#}"),
                    source: None,
                })?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        if self.last.lock().as_ref() == Some(&stored.access_token) {
            return Ok(None);
        }
        Ok(Some(Self::source(&self.tenants, self.org, stored)))
    }
}

impl TokenSource for TenantToken {
    fn token(&self) -> BoxFuture<'_, drift_client::Result<Secret>> {
        Box::pin(async move {
            let mut inner = self.inner.lock().await;
            let t = match inner.token().await {
                Ok(t) => t,
                Err(e @ drift_client::Error::Token { .. }) => match self.reload().await? {
                    Some(fresh) => {
                        *inner = fresh;
                        inner.token().await?
                    }
                    None => {
                        self.tenants.refresh_failed(self.org);
                        return Err(e);
                    }
                },
                Err(e) => return Err(e),
            };
            self.tenants.record_use(self.org, &self.purpose, 1);
            *self.last.lock() = Some(t.clone());
            Ok(t)
        })
    }

    fn invalidate<'a>(&'a self, stale: &'a Secret) -> BoxFuture<'a, drift_client::Result<bool>> {
        Box::pin(async move {
            let mut inner = self.inner.lock().await;
            match inner.invalidate(stale).await {
                // Our refresh token was spent by another process: take what it stored.
                Err(e @ drift_client::Error::Token { .. }) => match self.reload().await? {
                    Some(fresh) => {
                        *inner = fresh;
                        Ok(true)
                    }
                    None => {
                        self.tenants.refresh_failed(self.org);
                        Err(e)
                    }
                },
                other => other,
            }
        })
    }
}
