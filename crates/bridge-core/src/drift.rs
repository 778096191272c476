//! One Drift client per org, each with its own request budget (Drift limits per token), and a
//! per-org cache of users so a burst of conversations does not fetch the same agents again.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use drift_client::{ClientConfig, DriftClient, RateBudget, StaticToken};
use drift_types::{OrgId, Secret, User, UserId};

use crate::lock;

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
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            base_url: "https://driftapi.com".into(),
            default_token: None,
            tokens: BTreeMap::new(),
            rate_limit_per_minute: 600,
            timeout: Duration::from_secs(30),
            max_retries: 6,
        }
    }
}

/// Clients by org plus the user cache.
#[derive(Debug)]
pub struct DriftPool {
    config: DriftConfig,
    clients: Mutex<HashMap<OrgId, Arc<DriftClient>>>,
    users: Mutex<HashMap<(OrgId, UserId), (User, Instant)>>,
}

impl DriftPool {
    /// A pool for the config.
    pub fn new(config: DriftConfig) -> Self {
        Self {
            config,
            clients: Mutex::default(),
            users: Mutex::default(),
        }
    }

    /// The org's client, created on first use.
    pub fn client(&self, org: OrgId) -> anyhow::Result<Arc<DriftClient>> {
        let mut clients = lock(&self.clients);
        if let Some(c) = clients.get(&org) {
            return Ok(c.clone());
        }
        let token = self
            .config
            .tokens
            .get(&org.0)
            .or(self.config.default_token.as_ref())
            .ok_or_else(|| anyhow!("no Drift token configured for org {org}"))?;
        let mut cc = ClientConfig::with_base_url(&self.config.base_url)
            .context("while reading the Drift base URL")?;
        cc.timeout = self.config.timeout;
        cc.max_retries = self.config.max_retries;
        cc.budget = RateBudget {
            per_minute: self.config.rate_limit_per_minute,
            burst: None,
        };
        let client = Arc::new(DriftClient::new(cc, Arc::new(StaticToken(token.clone())))?);
        clients.insert(org, client.clone());
        Ok(client)
    }

    /// Users by id, from the cache where fresh, else one batched call.
    pub async fn users(&self, org: OrgId, ids: &[UserId]) -> anyhow::Result<Vec<User>> {
        let now = Instant::now();
        let (mut found, missing): (Vec<User>, Vec<UserId>) = {
            let cache = lock(&self.users);
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
            let fetched = self.client(org)?.users_by_id(&missing).await?;
            let mut cache = lock(&self.users);
            for (id, u) in fetched {
                cache.insert((org, id), (u.clone(), now));
                found.push(u);
            }
        }
        found.sort_by_key(|u| u.id);
        found.dedup_by_key(|u| u.id);
        Ok(found)
    }

    /// Forgets a cached user.
    pub fn forget_user(&self, org: OrgId, id: UserId) {
        lock(&self.users).remove(&(org, id));
    }

    /// Drift responses by status, summed over every org's client.
    pub fn status_counts(&self) -> BTreeMap<u16, u64> {
        let mut out = BTreeMap::new();
        for c in lock(&self.clients).values() {
            for (s, n) in c.stats().by_status() {
                *out.entry(s).or_default() += n;
            }
        }
        out
    }
}
