//! Tenants: the Drift orgs that installed the app, their tokens in the vault, disconnects,
//! and the audit of every use of a decrypted token.
//!
//! A tenant's token set is opened from the vault when its client is first needed and kept
//! only in that client's token source. A refresh is single-flight per tenant (the client's
//! `RefreshingToken`), and the rotated refresh token is sealed and committed before the new
//! access token is used. A process whose refresh is refused (another process rotated the
//! refresh token first) reloads the set from the vault and carries on with it.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow};
use bridge_store::tenants as store_tenants;
use bridge_store::vault::Vault;
use bridge_store::{Op, Store};
use drift_client::{OAuthApp, TokenSet};
use drift_types::OrgId;
use futures::future::BoxFuture;
use serde::Serialize;

/// Secret kinds in the vault.
pub const ACCESS_TOKEN: &str = "drift_access_token";
/// The refresh token.
pub const REFRESH_TOKEN: &str = "drift_refresh_token";

pub use bridge_store::tenants::{AuditEntry, Tenant};

/// The last error of the jobs a disconnect cancelled (a restore puts exactly these back).
pub const DISCONNECT_CANCEL: &str = "the tenant disconnected";

/// What a revoke did.
#[derive(Debug, Default, Serialize)]
pub struct Revoked {
    /// Drift's uninstall answered OK.
    pub uninstalled: bool,
    /// Secrets deleted.
    pub secrets_deleted: u64,
    /// Queued jobs cancelled.
    pub jobs_cancelled: u64,
}

/// Tenants in the store, their secrets in the vault.
#[derive(Debug, Clone)]
pub struct Tenants {
    store: Store,
    vault: Arc<Vault>,
    oauth: Option<OAuthApp>,
    /// Calls per (org, purpose) not yet written to the audit table.
    uses: Arc<Mutex<HashMap<(OrgId, String), i64>>>,
    /// Token refreshes that failed, per org, since the process started.
    refresh_failures: Arc<Mutex<std::collections::BTreeMap<OrgId, u64>>>,
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Tenants {
    /// Tenants on `store` with `vault`; `oauth` refreshes expiring tokens.
    pub fn new(store: Store, vault: Arc<Vault>, oauth: Option<OAuthApp>) -> Self {
        Tenants {
            store,
            vault,
            oauth,
            uses: Arc::default(),
            refresh_failures: Arc::default(),
        }
    }

    /// Counts a refresh of the org's token that failed (Drift refused it, or it could not be
    /// stored).
    pub fn refresh_failed(&self, org: OrgId) {
        *self.refresh_failures.lock().entry(org).or_default() += 1;
    }

    /// Failed refreshes per org since the process started.
    pub fn refresh_failures(&self) -> Vec<(OrgId, u64)> {
        self.refresh_failures
            .lock()
            .iter()
            .map(|(o, n)| (*o, *n))
            .collect()
    }

    /// The OAuth app, when configured.
    pub fn oauth(&self) -> Option<&OAuthApp> {
        self.oauth.as_ref()
    }

    /// Records an install: the tenant row and its sealed tokens, in one transaction. (A
    /// re-install of a disconnected org goes through [`crate::reconnect::install`], which
    /// also queues again what the disconnect stopped.)
    pub async fn install(
        &self,
        org: OrgId,
        tokens: &TokenSet,
        scopes: Option<&str>,
        installed_by: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.store.begin().await?;
        self.install_in(&mut tx, org, tokens, scopes, installed_by)
            .await?;
        tx.commit().await.op("committing an install")?;
        Ok(())
    }

    /// [`Tenants::install`] in the caller's transaction.
    pub async fn install_in(
        &self,
        conn: &mut bridge_store::Conn,
        org: OrgId,
        tokens: &TokenSet,
        scopes: Option<&str>,
        installed_by: Option<&str>,
    ) -> Result<()> {
        store_tenants::upsert_active(conn, org, scopes, installed_by, drift_types::now_ms())
            .await?;
        self.put_tokens(conn, org, tokens).await
    }

    async fn put_tokens(
        &self,
        conn: &mut bridge_store::Conn,
        org: OrgId,
        t: &TokenSet,
    ) -> Result<()> {
        self.vault
            .put(conn, org, ACCESS_TOKEN, &t.access_token)
            .await?;
        if let Some(r) = &t.refresh_token {
            self.vault.put(conn, org, REFRESH_TOKEN, r).await?;
        }
        store_tenants::set_token_expiry(conn, org, t.expires_at.map(ms)).await?;
        Ok(())
    }

    /// Seals and commits a refreshed token set.
    pub async fn save_tokens(&self, org: OrgId, t: &TokenSet) -> Result<()> {
        let mut tx = self.store.begin().await?;
        self.put_tokens(&mut tx, org, t).await?;
        tx.commit().await.op("committing refreshed tokens")?;
        Ok(())
    }

    /// The tenant, if the org installed the app.
    pub async fn get(&self, org: OrgId) -> Result<Option<Tenant>> {
        Ok(self.select(Some(org)).await?.into_iter().next())
    }

    /// Whether the org disconnected (revoked); an org that never installed has not.
    pub async fn disconnected(&self, org: OrgId) -> Result<bool> {
        Ok(self.get(org).await?.is_some_and(|t| t.status != "active"))
    }

    /// Every tenant.
    pub async fn list(&self) -> Result<Vec<Tenant>> {
        self.select(None).await
    }

    async fn select(&self, org: Option<OrgId>) -> Result<Vec<Tenant>> {
        Ok(store_tenants::select(&self.store, org).await?)
    }

    /// The org's token set, opened from the vault.
    pub async fn tokens(&self, org: OrgId) -> Result<Option<TokenSet>> {
        let Some(t) = self.get(org).await? else {
            return Ok(None);
        };
        if t.status != "active" {
            return Err(anyhow!(
                "org {org} disconnected driftbridge; reinstall the app to reconnect"
            ));
        }
        let mut conn = self.store.acquire().await?;
        let Some(access) = self.vault.get(&mut conn, org, ACCESS_TOKEN).await? else {
            return Ok(None);
        };
        let refresh = self.vault.get(&mut conn, org, REFRESH_TOKEN).await?;
        Ok(Some(TokenSet {
            access_token: access,
            refresh_token: refresh,
            expires_at: t
                .token_expires_at
                .map(|e| SystemTime::UNIX_EPOCH + Duration::from_millis(e.max(0) as u64)),
            org_id: Some(org),
        }))
    }

    /// Counts `calls` uses of the org's token for `purpose` (written by [`Tenants::flush_audit`]).
    pub fn record_use(&self, org: OrgId, purpose: &str, calls: i64) {
        *self
            .uses
            .lock()
            .entry((org, purpose.to_owned()))
            .or_default() += calls;
    }

    /// Writes the counted uses to the audit table and the tenants' last activity.
    pub async fn flush_audit(&self) -> Result<()> {
        let uses: Vec<_> = self.uses.lock().drain().collect();
        if uses.is_empty() {
            return Ok(());
        }
        let now = drift_types::now_ms();
        let mut tx = self.store.begin().await?;
        for ((org, purpose), calls) in uses {
            store_tenants::record_use(&mut tx, org, &purpose, calls, now).await?;
        }
        tx.commit().await.op("committing the token audit")?;
        Ok(())
    }

    /// The org's audit trail, newest first.
    pub async fn audit(&self, org: OrgId) -> Result<Vec<AuditEntry>> {
        Ok(store_tenants::audit(&self.store, org).await?)
    }

    /// Disconnects the org: asks Drift to uninstall while a token still works, deletes its
    /// secrets and data key, cancels its queued jobs and marks it revoked with `reason`
    /// (which also stops its scheduled syncs). Safe to run twice. `tenants restore` or a
    /// re-install undoes it ([`crate::reconnect`]).
    pub async fn revoke(&self, org: OrgId, base_url: &str, reason: &str) -> Result<Revoked> {
        let mut out = Revoked::default();
        if let (Some(app), Ok(Some(tokens))) = (&self.oauth, self.tokens(org).await) {
            let mut cc = drift_client::ClientConfig::with_base_url(base_url)?;
            cc.max_retries = 2;
            let client = drift_client::DriftClient::new(
                cc,
                Arc::new(drift_client::StaticToken(tokens.access_token)),
            )?;
            match client.uninstall(&app.client_id, &app.client_secret).await {
                Ok(_) => out.uninstalled = true,
                Err(e) => {
                    tracing::warn!(org.id = org.0, error = %e, "Drift's uninstall failed; deleting the tokens anyway")
                }
            }
            self.record_use(org, "uninstall", 1);
        }
        let mut tx = self.store.begin().await?;
        out.secrets_deleted = self.vault.delete(&mut tx, org).await?;
        let now = drift_types::now_ms();
        out.jobs_cancelled =
            bridge_queue::cancel_org(&mut tx, org.0, DISCONNECT_CANCEL, now).await?;
        store_tenants::mark_revoked(&mut tx, org, reason, now).await?;
        tx.commit().await.op("committing a revoke")?;
        self.flush_audit()
            .await
            .context("while writing the audit")?;
        Ok(out)
    }

    /// The callback that persists a refreshed set before it is used.
    pub fn persist_refresh(&self, org: OrgId) -> drift_client::OnRefresh {
        let me = self.clone();
        Arc::new(
            move |t: TokenSet| -> BoxFuture<'static, drift_client::Result<()>> {
                let me = me.clone();
                Box::pin(async move {
                    me.save_tokens(org, &t)
                        .await
                        .map_err(|e| drift_client::Error::Token {
                            message: format!("could not store the refreshed token: {e:#}"),
                            source: None,
                        })
                })
            },
        )
    }
}
