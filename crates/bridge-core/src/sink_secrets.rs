//! CRM credentials in the token vault: sealed like tenants' Drift tokens, under the
//! installation's own data key (org id 0, which no Drift org has), kind `sink:NAME:FIELD`.

use std::sync::Arc;

use bridge_sinks::sink::{SecretFuture, SecretStore};
use bridge_store::Store;
use bridge_store::vault::Vault;
use drift_types::{OrgId, Secret};

/// The vault's "org" for installation-wide secrets.
pub const INSTALLATION: OrgId = OrgId(0);

/// The vault kind of a sink's secret.
pub fn kind(sink: &str, field: &str) -> String {
    format!("sink:{sink}:{field}")
}

/// Sink secrets in the vault.
#[derive(Debug, Clone)]
pub struct SinkSecrets {
    store: Store,
    vault: Arc<Vault>,
}

impl SinkSecrets {
    /// Secrets on `store`, sealed with `vault`'s keys.
    pub fn new(store: Store, vault: Arc<Vault>) -> Self {
        SinkSecrets { store, vault }
    }

    /// Seals and stores a sink secret.
    pub async fn put(&self, sink: &str, field: &str, value: &Secret) -> anyhow::Result<()> {
        let mut tx = self.store.begin().await?;
        self.vault
            .put(&mut tx, INSTALLATION, &kind(sink, field), value)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Opens a sink secret.
    pub async fn get(&self, sink: &str, field: &str) -> anyhow::Result<Option<Secret>> {
        let mut conn = self.store.acquire().await?;
        Ok(self
            .vault
            .get(&mut conn, INSTALLATION, &kind(sink, field))
            .await?)
    }
}

impl SecretStore for SinkSecrets {
    fn load<'a>(&'a self, sink: &'a str, field: &'a str) -> SecretFuture<'a, Option<Secret>> {
        Box::pin(async move { self.get(sink, field).await.map_err(Into::into) })
    }

    fn save<'a>(&'a self, sink: &'a str, field: &'a str, value: Secret) -> SecretFuture<'a, ()> {
        Box::pin(async move { self.put(sink, field, &value).await.map_err(Into::into) })
    }
}
