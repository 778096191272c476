//! Configuration: the embedded commented defaults (`driftbridge.default.toml`), then an
//! optional file, then `DRIFTBRIDGE_` environment variables (`__` nests), then flags. The
//! whole tree is validated once and every problem is reported together.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bridge_core::drift::DriftConfig;
use bridge_queue::QueueConfig;
use drift_types::Secret;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The defaults file, shown by `driftbridge config defaults`.
pub const DEFAULTS: &str = include_str!("../driftbridge.default.toml");

/// Everything driftbridge reads.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Config {
    /// HTTP server.
    pub server: ServerConfig,
    /// Database.
    pub database: DatabaseConfig,
    /// Drift.
    pub drift: DriftSection,
    /// Workers.
    pub workers: WorkersConfig,
    /// Scheduled syncs.
    pub sync: SyncConfig,
    /// The master key.
    pub secrets: SecretsConfig,
    /// The Drift app's OAuth settings.
    pub oauth: OAuthConfig,
    /// The admin perimeter.
    pub admin: AdminConfig,
    /// Outbound URL guard.
    pub outbound: OutboundConfig,
    /// How long each kind of stored data is kept.
    pub retention: RetentionSection,
    /// The widget bridge: sites whose pages post widget events (docs/WIDGET.md).
    #[serde(default)]
    pub widget: bridge_core::widget::WidgetConfig,
    /// CRM/MAP sinks by name (`[sinks.NAME]`, `kind` = hubspot, salesforce, marketo or http).
    #[serde(default)]
    pub sinks: BTreeMap<String, bridge_sinks::registry::SinkSpec>,
}

/// `[secrets]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SecretsConfig {
    /// 64 hex digits.
    #[serde(default)]
    pub master_key: Option<Secret>,
    /// A file holding the master key.
    #[serde(default)]
    pub master_key_file: Option<std::path::PathBuf>,
    /// Keys still accepted for opening.
    #[serde(default)]
    pub old_master_keys: Vec<Secret>,
}

/// `[oauth]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OAuthConfig {
    /// Client id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Client secret.
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Registered redirect URL.
    #[serde(default)]
    pub redirect_url: Option<String>,
    /// Drift's authorize page.
    pub authorize_url: String,
    /// Token endpoint ("" = `<drift.base_url>/oauth2/token`).
    pub token_url: String,
}

/// `[admin]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AdminConfig {
    /// The admin token (console sign-in, JSON API and /metrics bearer).
    #[serde(default)]
    pub token: Option<Secret>,
    /// The viewer token (console, read-only, personal data masked).
    #[serde(default)]
    pub viewer_token: Option<Secret>,
    /// Serve /metrics without the token.
    pub metrics_public: bool,
    /// Mark the console's session cookie Secure.
    pub secure_cookies: bool,
}

/// `[outbound]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OutboundConfig {
    /// Allowed hosts or addresses.
    pub allow: Vec<String>,
}

/// `[retention]`: days each kind is kept (0 = forever), and the purge's pace.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RetentionSection {
    /// Message bodies and attributes, and transcripts.
    pub message_bodies_days: u64,
    /// Stored webhook events (once their jobs finished).
    pub webhook_payloads_days: u64,
    /// Jobs done or cancelled.
    pub finished_jobs_days: u64,
    /// Dead jobs.
    pub dead_jobs_days: u64,
    /// Delivery records (the CRM ids a re-delivery updates).
    pub delivery_records_days: u64,
    /// Token-use audit rows.
    pub token_audit_days: u64,
    /// Widget events (docs/WIDGET.md).
    pub widget_events_days: u64,
    /// Seconds between purges; 0 = no purge.
    pub interval_secs: u64,
    /// Rows per purge transaction.
    pub batch: i64,
}

/// `[sync]`: scheduled reconciliation syncs run by `serve`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SyncConfig {
    /// Seconds between syncs of one org; 0 = off.
    pub interval_secs: u64,
    /// Orgs to sync (empty = every org in drift.tokens).
    pub orgs: Vec<i64>,
    /// Lease per org in seconds.
    pub lease_secs: u64,
    /// Overlap below the high-water mark in seconds.
    pub overlap_secs: u64,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ServerConfig {
    /// Listen address.
    pub listen: String,
    /// Longest wait for a request's headers (and for the next one on an idle connection).
    pub header_read_timeout_secs: u64,
    /// Longest wait for a webhook's body.
    pub body_read_timeout_secs: u64,
    /// Connections open at once.
    pub max_connections: usize,
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DatabaseConfig {
    /// URL.
    pub url: Secret,
    /// PostgreSQL pool size.
    pub max_connections: u32,
}

/// `[drift]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DriftSection {
    /// REST base URL.
    pub base_url: String,
    /// Default private-app token.
    #[serde(default)]
    pub token: Option<Secret>,
    /// Tokens per org id.
    #[serde(default)]
    pub tokens: BTreeMap<String, Secret>,
    /// Accepted webhook verification tokens.
    #[serde(default)]
    pub verification_tokens: Vec<Secret>,
    /// Requests per minute per token.
    pub rate_limit_per_minute: u32,
    /// Request timeout in seconds.
    pub timeout_secs: u64,
    /// Retries of one Drift call.
    pub max_retries: u32,
}

/// `[workers]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct WorkersConfig {
    /// Jobs at once.
    pub concurrency: usize,
    /// Lease in seconds.
    pub lease_secs: u64,
    /// Attempts before dead.
    pub max_attempts: u32,
    /// First backoff in ms.
    pub backoff_base_ms: u64,
    /// Backoff cap in seconds.
    pub backoff_cap_secs: u64,
    /// Poll interval in ms.
    pub poll_interval_ms: u64,
    /// Shutdown grace in seconds.
    pub shutdown_grace_secs: u64,
}

/// Flags that override the file and environment.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    /// `--database-url`.
    pub database_url: Option<String>,
    /// `--listen`.
    pub listen: Option<String>,
}

impl Config {
    /// Loads defaults, `file` (or `./driftbridge.toml` when present), the environment and
    /// `overrides`, then validates.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self> {
        let mut fig = Figment::from(Toml::string(DEFAULTS));
        match file {
            Some(f) => {
                if !f.exists() {
                    bail!("config file {} does not exist", f.display());
                }
                fig = fig.merge(Toml::file(f));
            }
            None => fig = fig.merge(Toml::file("driftbridge.toml")),
        }
        // Variables with the prefix that are not settings: the master key's own name (mapped
        // below), `--database-url`'s, and the test suites'.
        fig = fig.merge(
            Env::prefixed("DRIFTBRIDGE_")
                .ignore(&["MASTER_KEY", "DATABASE_URL", "TEST_PYTHON", "TEST_PG"])
                .split("__"),
        );
        // The master key's documented variable, beside DRIFTBRIDGE_SECRETS__MASTER_KEY.
        fig = fig.merge(
            Env::raw()
                .only(&["DRIFTBRIDGE_MASTER_KEY"])
                .map(|_| "secrets.master_key".into()),
        );
        Self::finish(fig, overrides)
    }

    /// The built-in defaults and `overrides` only: no file, no environment (the demo, which
    /// must run the same on every machine whatever `./driftbridge.toml` says).
    pub fn builtin(overrides: &Overrides) -> Result<Self> {
        Self::finish(Figment::from(Toml::string(DEFAULTS)), overrides)
    }

    /// Applies the flags, then extracts and validates, reporting every problem at once.
    fn finish(mut fig: Figment, overrides: &Overrides) -> Result<Self> {
        if let Some(u) = &overrides.database_url {
            fig = fig.merge(Serialized::default("database.url", u));
        }
        if let Some(l) = &overrides.listen {
            fig = fig.merge(Serialized::default("server.listen", l));
        }
        // Every problem in one pass: stray keys, values of the wrong type, then validation.
        let mut problems = Self::unknown_keys(&fig);
        let config = match fig.extract::<Config>() {
            Ok(c) => Some(c),
            Err(e) => {
                problems.extend(
                    e.into_iter()
                        .flat_map(|e| crate::config_keys::explain(&fig, e)),
                );
                None
            }
        };
        if let Some(c) = &config {
            problems.extend(c.problems());
        }
        match config {
            Some(c) if problems.is_empty() => Ok(c),
            _ => bail!("invalid configuration:\n  - {}", problems.join("\n  - ")),
        }
    }

    /// Keys of `fig` that no setting reads.
    fn unknown_keys(fig: &Figment) -> Vec<String> {
        // The known keys: every field of a configuration built from the defaults alone.
        let known = Figment::from(Toml::string(DEFAULTS))
            .extract::<Config>()
            .ok()
            .and_then(|c| serde_json::to_value(c).ok());
        match (fig.extract::<serde_json::Value>(), known) {
            (Ok(merged), Some(known)) => crate::config_keys::unknown_keys(fig, &merged, &known),
            _ => Vec::new(),
        }
    }

    /// Every problem of a parsed configuration.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.server.header_read_timeout_secs == 0 || self.server.body_read_timeout_secs == 0 {
            problems.push(
                "server.header_read_timeout_secs and server.body_read_timeout_secs must be at \
                 least 1"
                    .into(),
            );
        }
        if self.server.max_connections == 0 {
            problems.push("server.max_connections must be at least 1".into());
        }
        if self.server.listen.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "server.listen {:?} is not an address like 127.0.0.1:8080",
                self.server.listen
            ));
        }
        if !is_http_url(&self.drift.base_url) {
            problems.push(format!(
                "drift.base_url {:?} is not an http(s) URL",
                self.drift.base_url
            ));
        }
        for k in self.drift.tokens.keys() {
            if k.parse::<i64>().is_err() {
                problems.push(format!("drift.tokens key {k:?} is not an org id"));
            }
        }
        if self.drift.verification_tokens.iter().any(Secret::is_empty) {
            problems.push("drift.verification_tokens holds an empty token".into());
        }
        if self.retention.interval_secs > 0 && self.retention.batch < 1 {
            problems.push("retention.batch must be at least 1".into());
        }
        if self.workers.concurrency == 0 {
            problems.push("workers.concurrency must be at least 1".into());
        }
        if self.workers.max_attempts == 0 {
            problems.push("workers.max_attempts must be at least 1".into());
        }
        if self.workers.lease_secs < 3 {
            problems.push("workers.lease_secs must be at least 3".into());
        }
        // Command-line exports and syncs into a database hold the lease too, scheduled or not.
        if self.sync.lease_secs < 10 {
            problems.push("sync.lease_secs must be at least 10".into());
        }
        if self.sync.interval_secs > 0 && self.sync_orgs().is_empty() {
            problems.push(
                "sync.interval_secs is set but no org to sync: list sync.orgs or drift.tokens"
                    .into(),
            );
        }
        problems.extend(self.widget.problems());
        for (name, spec) in &self.sinks {
            for p in spec.problems() {
                problems.push(format!("sinks.{name}: {p}"));
            }
        }
        problems
    }

    /// The keyring when a master key is configured, `None` when none is; a configured key
    /// that cannot be read or parsed is an error that says which setting is wrong.
    pub fn keyring_if_configured(&self) -> Result<Option<bridge_store::vault::Keyring>> {
        if self.secrets.master_key.is_none() && self.secrets.master_key_file.is_none() {
            return Ok(None);
        }
        self.keyring().map(Some)
    }

    /// The master keyring: the configured key (or key file) plus the old keys. Errors say how
    /// to make a key.
    pub fn keyring(&self) -> Result<bridge_store::vault::Keyring> {
        use bridge_store::vault::{Keyring, MasterKey};
        let text = match (&self.secrets.master_key, &self.secrets.master_key_file) {
            (Some(k), _) => k.clone(),
            (None, Some(f)) => Secret::new(std::fs::read_to_string(f).with_context(|| {
                format!("while reading secrets.master_key_file {}", f.display())
            })?),
            (None, None) => bail!(
                "no master key: driftbridge seals every stored token with it. Make one with \
                 `driftbridge keys generate` and pass it as DRIFTBRIDGE_MASTER_KEY (or \
                 secrets.master_key_file)"
            ),
        };
        let primary = MasterKey::parse(&text).context("secrets.master_key")?;
        let old = self
            .secrets
            .old_master_keys
            .iter()
            .map(MasterKey::parse)
            .collect::<Result<Vec<_>, _>>()
            .context("secrets.old_master_keys")?;
        Ok(Keyring { primary, old })
    }

    /// The Drift app for the OAuth flow and refreshes, when `[oauth]` is filled in.
    pub fn oauth_app(&self) -> Result<Option<drift_client::OAuthApp>> {
        let (Some(id), Some(secret), Some(redirect)) = (
            &self.oauth.client_id,
            &self.oauth.client_secret,
            &self.oauth.redirect_url,
        ) else {
            return Ok(None);
        };
        let token_url = if self.oauth.token_url.is_empty() {
            format!("{}/oauth2/token", self.drift.base_url.trim_end_matches('/'))
        } else {
            self.oauth.token_url.clone()
        };
        Ok(Some(drift_client::OAuthApp::with_endpoints(
            id.clone(),
            secret.clone(),
            redirect.clone(),
            &self.oauth.authorize_url,
            &token_url,
        )?))
    }

    /// The orgs the scheduled sync covers.
    pub fn sync_orgs(&self) -> Vec<i64> {
        if self.sync.orgs.is_empty() {
            self.drift
                .tokens
                .keys()
                .filter_map(|k| k.parse().ok())
                .collect()
        } else {
            self.sync.orgs.clone()
        }
    }

    /// The limits on HTTP clients.
    pub fn server_limits(&self) -> bridge_web::server::ServerLimits {
        bridge_web::server::ServerLimits {
            header_read_timeout: Duration::from_secs(self.server.header_read_timeout_secs),
            body_read_timeout: Duration::from_secs(self.server.body_read_timeout_secs),
            max_connections: self.server.max_connections,
        }
    }

    /// The listen address (validated).
    pub fn listen(&self) -> SocketAddr {
        self.server
            .listen
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080)))
    }

    /// The Drift slice for bridge-core.
    pub fn drift(&self) -> DriftConfig {
        DriftConfig {
            base_url: self.drift.base_url.clone(),
            default_token: self.drift.token.clone(),
            tokens: self
                .drift
                .tokens
                .iter()
                .filter_map(|(k, v)| Some((k.parse().ok()?, v.clone())))
                .collect(),
            rate_limit_per_minute: self.drift.rate_limit_per_minute,
            timeout: Duration::from_secs(self.drift.timeout_secs),
            max_retries: self.drift.max_retries,
            max_budget_wait: None,
        }
    }

    /// The outbound guard for sinks.
    pub fn outbound_guard(&self) -> bridge_sinks::outbound::OutboundGuard {
        bridge_sinks::outbound::OutboundGuard::new(&self.outbound.allow)
    }

    /// Builds the configured sinks; secrets left out of the configuration come from
    /// `secrets` (the vault).
    pub async fn build_sinks(
        &self,
        secrets: Option<std::sync::Arc<dyn bridge_sinks::sink::SecretStore>>,
    ) -> Result<bridge_sinks::registry::Sinks> {
        bridge_sinks::registry::Sinks::build(&self.sinks, &self.outbound_guard(), secrets)
            .await
            .map_err(|e| anyhow::anyhow!("invalid sink configuration: {e}"))
    }

    /// The queue slice.
    /// The retention purge's settings (`holder`: this process's name in the lease table).
    pub fn retention(&self, holder: &str) -> bridge_core::retention::RetentionConfig {
        use bridge_store::retention::{Kind, Windows};
        let r = &self.retention;
        let days = |d: u64| (d > 0).then(|| Duration::from_secs(d * 86_400));
        bridge_core::retention::RetentionConfig {
            windows: Windows(vec![
                (Kind::MessageBodies, days(r.message_bodies_days)),
                (Kind::WebhookPayloads, days(r.webhook_payloads_days)),
                (Kind::FinishedJobs, days(r.finished_jobs_days)),
                (Kind::DeadJobs, days(r.dead_jobs_days)),
                (Kind::DeliveryRecords, days(r.delivery_records_days)),
                (Kind::TokenAudit, days(r.token_audit_days)),
                (Kind::WidgetEvents, days(r.widget_events_days)),
            ]),
            interval: Duration::from_secs(r.interval_secs),
            batch: r.batch.max(1),
            // Room for intake between two purge transactions (a webhook's commit takes ~1 ms).
            pause: Duration::from_millis(20),
            lease: Duration::from_secs(600),
            holder: holder.to_owned(),
        }
    }

    pub fn queue(&self) -> QueueConfig {
        QueueConfig {
            lease: Duration::from_secs(self.workers.lease_secs),
            max_attempts: self.workers.max_attempts,
            backoff_base: Duration::from_millis(self.workers.backoff_base_ms),
            backoff_cap: Duration::from_secs(self.workers.backoff_cap_secs),
        }
    }
}

fn is_http_url(u: &str) -> bool {
    u.starts_with("http://") || u.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_load_and_validate() {
        let c = Config::load(None, &Overrides::default()).unwrap();
        assert_eq!(c.workers.max_attempts, 8);
        assert_eq!(c.database.url.expose(), "sqlite:driftbridge.db");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bad.toml");
        std::fs::write(
            &f,
            "[server]\nlisten = \"nowhere\"\n[drift]\nbase_url = \"ftp://x\"\n[workers]\nconcurrency = 0\n",
        )
        .unwrap();
        let e = Config::load(Some(&f), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.listen"), "{e}");
        assert!(e.contains("drift.base_url"), "{e}");
        assert!(e.contains("workers.concurrency"), "{e}");
    }

    #[test]
    fn a_sync_lease_too_short_to_renew_is_refused_without_a_schedule_too() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("lease.toml");
        std::fs::write(
            &f,
            "[sync]
interval_secs = 0
lease_secs = 0
",
        )
        .unwrap();
        let e = Config::load(Some(&f), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("sync.lease_secs must be at least 10"), "{e}");
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused_with_where_and_the_closest_key() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("typos.toml");
        std::fs::write(
            &f,
            "[workers]\nconcurency = 4\n[srever]\nlisten = \"127.0.0.1:1\"\n[server]\nlisten = \"nowhere\"\n",
        )
        .unwrap();
        let e = Config::load(Some(&f), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key workers.concurency"), "{e}");
        assert!(e.contains("did you mean workers.concurrency?"), "{e}");
        assert!(e.contains("unknown key srever"), "{e}");
        assert!(
            e.contains(&f.display().to_string()),
            "the file is named: {e}"
        );
        // ... and in the same pass, the problems of known keys.
        assert!(e.contains("server.listen"), "{e}");
    }
}
