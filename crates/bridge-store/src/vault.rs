//! The token vault: envelope encryption of every secret at rest.
//!
//! A secret is sealed with AES-256-GCM under its tenant's data key; the associated data is
//! `driftbridge/secret/v1|org=..|kind=..|key_version=..`, so a ciphertext copied to another
//! tenant's row or another kind does not open. Each data key is itself sealed under a master
//! key (associated data: org, data-key version, master key id) that lives only in the process
//! (`DRIFTBRIDGE_MASTER_KEY` or a key file), never in the database. Rotating the master key
//! re-seals the data keys only; secrets stay as they are.
//!
//! Opened data keys are cached in memory, so a running process keeps working while
//! `driftbridge keys rotate` re-seals them under a new master key.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt;

use drift_types::{OrgId, Secret};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

pub use crate::error::VaultError;
use crate::{Conn, Op, Result, Store};

/// 32 bytes of key material with a short public id; `Debug` never shows the key.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    key: [u8; 32],
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({}, [redacted])", self.id)
    }
}

impl MasterKey {
    /// Parses 64 hex digits (surrounding whitespace ignored).
    pub fn parse(text: &Secret) -> Result<Self, VaultError> {
        let bytes = hex::decode(text.expose().trim()).map_err(|_| VaultError::BadMasterKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| VaultError::BadMasterKey)?;
        let digest = Sha256::new()
            .chain_update(b"driftbridge master key id\0")
            .chain_update(key)
            .finalize();
        Ok(MasterKey {
            id: hex::encode(&digest[..8]),
            key,
        })
    }

    /// A fresh random key as 64 hex digits.
    pub fn generate() -> Result<Secret, VaultError> {
        let mut k = [0u8; 32];
        SystemRandom::new()
            .fill(&mut k)
            .map_err(|_| VaultError::Random)?;
        Ok(Secret::new(hex::encode(k)))
    }

    /// The key's public id (a hash prefix), stored beside what it seals.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A key for a named purpose derived from this one (e.g. signing OAuth state cookies).
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        Sha256::new()
            .chain_update(b"driftbridge derived key\0")
            .chain_update(purpose.as_bytes())
            .chain_update(b"\0")
            .chain_update(self.key)
            .finalize()
            .into()
    }
}

/// The master key that seals new data keys, plus older ones still accepted for opening.
#[derive(Clone, Debug)]
pub struct Keyring {
    /// Seals.
    pub primary: MasterKey,
    /// Open only.
    pub old: Vec<MasterKey>,
}

impl Keyring {
    fn find(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.primary)
            .chain(self.old.iter())
            .find(|k| k.id == id)
    }
}

fn seal(key: &[u8; 32], aad: &str, plain: &[u8]) -> Result<String, VaultError> {
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).map_err(|_| VaultError::Random)?);
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| VaultError::Random)?;
    let mut buf = plain.to_vec();
    k.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad.as_bytes()),
        &mut buf,
    )
    .map_err(|_| VaultError::Random)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(hex::encode(out))
}

fn open(key: &[u8; 32], aad: &str, sealed: &str) -> Option<Vec<u8>> {
    let bytes = hex::decode(sealed).ok()?;
    if bytes.len() < NONCE_LEN {
        return None;
    }
    let (n, ct) = bytes.split_at(NONCE_LEN);
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    let mut buf = ct.to_vec();
    let plain = k
        .open_in_place(
            Nonce::try_assume_unique_for_key(n).ok()?,
            Aad::from(aad.as_bytes()),
            &mut buf,
        )
        .ok()?;
    Some(plain.to_vec())
}

fn key_aad(org: OrgId, version: i64, master_id: &str) -> String {
    format!("driftbridge/data-key/v1|org={org}|version={version}|master={master_id}")
}

fn secret_aad(org: OrgId, kind: &str, version: i64) -> String {
    format!("driftbridge/secret/v1|org={org}|kind={kind}|key_version={version}")
}

/// Seals and opens tenants' secrets in the store.
pub struct Vault {
    keyring: Mutex<Keyring>,
    data_keys: Mutex<HashMap<(OrgId, i64), [u8; 32]>>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault").finish_non_exhaustive()
    }
}

/// The data key version new secrets use.
const DATA_KEY_VERSION: i64 = 1;

impl Vault {
    /// A vault with `keyring`.
    pub fn new(keyring: Keyring) -> Self {
        Vault {
            keyring: Mutex::new(keyring),
            data_keys: Mutex::new(HashMap::new()),
        }
    }

    /// The org's data key, opened (created and sealed under the primary key if it has none).
    async fn data_key(
        &self,
        conn: &mut Conn,
        org: OrgId,
        create: bool,
    ) -> Result<Option<[u8; 32]>> {
        if let Some(k) = self.data_keys.lock().get(&(org, DATA_KEY_VERSION)) {
            return Ok(Some(*k));
        }
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT master_key_id, wrapped FROM tenant_keys WHERE org_id = $1 AND version = $2",
        )
        .bind(org.0)
        .bind(DATA_KEY_VERSION)
        .fetch_optional(&mut *conn)
        .await
        .op("reading a data key")?;
        let key = match row {
            Some((master_id, wrapped)) => {
                let ring = self.keyring.lock().clone();
                let master = ring.find(&master_id).ok_or(VaultError::UnknownMasterKey {
                    org: org.0,
                    key_id: master_id.clone(),
                })?;
                let plain = open(
                    &master.key,
                    &key_aad(org, DATA_KEY_VERSION, &master_id),
                    &wrapped,
                )
                .ok_or(VaultError::Tampered {
                    org: org.0,
                    what: "data key".into(),
                })?;
                plain.try_into().map_err(|_| VaultError::Tampered {
                    org: org.0,
                    what: "data key".into(),
                })?
            }
            None if create => {
                let mut k = [0u8; 32];
                SystemRandom::new()
                    .fill(&mut k)
                    .map_err(|_| VaultError::Random)?;
                let primary = self.keyring.lock().primary.clone();
                let wrapped = seal(
                    &primary.key,
                    &key_aad(org, DATA_KEY_VERSION, &primary.id),
                    &k,
                )?;
                sqlx::query(
                    "INSERT INTO tenant_keys (org_id, version, master_key_id, wrapped, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(org.0)
                .bind(DATA_KEY_VERSION)
                .bind(&primary.id)
                .bind(wrapped)
                .bind(drift_types::now_ms())
                .execute(&mut *conn)
                .await
                .op("storing a data key")?;
                k
            }
            None => return Ok(None),
        };
        self.data_keys.lock().insert((org, DATA_KEY_VERSION), key);
        Ok(Some(key))
    }

    /// Seals and stores `value` as the org's secret of `kind`, in the caller's transaction.
    pub async fn put(&self, conn: &mut Conn, org: OrgId, kind: &str, value: &Secret) -> Result<()> {
        let key = self
            .data_key(conn, org, true)
            .await?
            .ok_or(VaultError::Random)?;
        let sealed = seal(
            &key,
            &secret_aad(org, kind, DATA_KEY_VERSION),
            value.expose().as_bytes(),
        )?;
        sqlx::query(
            "INSERT INTO tenant_secrets (org_id, kind, key_version, sealed, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org_id, kind) DO UPDATE SET \
             key_version = excluded.key_version, sealed = excluded.sealed, \
             updated_at = excluded.updated_at",
        )
        .bind(org.0)
        .bind(kind)
        .bind(DATA_KEY_VERSION)
        .bind(sealed)
        .bind(drift_types::now_ms())
        .execute(&mut *conn)
        .await
        .op("storing a secret")?;
        Ok(())
    }

    /// Opens the org's secret of `kind`; `None` when it has none.
    pub async fn get(&self, conn: &mut Conn, org: OrgId, kind: &str) -> Result<Option<Secret>> {
        let row: Option<(i64, String)> = sqlx::query_as(
            "SELECT key_version, sealed FROM tenant_secrets WHERE org_id = $1 AND kind = $2",
        )
        .bind(org.0)
        .bind(kind)
        .fetch_optional(&mut *conn)
        .await
        .op("reading a secret")?;
        let Some((version, sealed)) = row else {
            return Ok(None);
        };
        let tampered = || VaultError::Tampered {
            org: org.0,
            what: kind.to_owned(),
        };
        let key = self
            .data_key(conn, org, false)
            .await?
            .ok_or_else(tampered)?;
        let plain = open(&key, &secret_aad(org, kind, version), &sealed).ok_or_else(tampered)?;
        Ok(Some(Secret::new(
            String::from_utf8(plain).map_err(|_| tampered())?,
        )))
    }

    /// Deletes every secret and data key of the org; answers how many secrets there were.
    pub async fn delete(&self, conn: &mut Conn, org: OrgId) -> Result<u64> {
        let n = sqlx::query("DELETE FROM tenant_secrets WHERE org_id = $1")
            .bind(org.0)
            .execute(&mut *conn)
            .await
            .op("deleting secrets")?
            .rows_affected();
        sqlx::query("DELETE FROM tenant_keys WHERE org_id = $1")
            .bind(org.0)
            .execute(&mut *conn)
            .await
            .op("deleting data keys")?;
        self.data_keys.lock().retain(|(o, _), _| *o != org);
        Ok(n)
    }

    /// Re-seals every data key that is not under the primary master key; answers how many.
    /// Each is re-sealed in its own short transaction, so running processes are not blocked.
    pub async fn rotate(&self, store: &Store) -> Result<u64> {
        let ring = self.keyring.lock().clone();
        let rows: Vec<(i64, i64, String, String)> = sqlx::query_as(
            "SELECT org_id, version, master_key_id, wrapped FROM tenant_keys WHERE master_key_id <> $1",
        )
        .bind(&ring.primary.id)
        .fetch_all(store.pool())
        .await
        .op("listing data keys")?;
        let mut n = 0;
        for (org, version, master_id, wrapped) in rows {
            let org = OrgId(org);
            let master = ring.find(&master_id).ok_or(VaultError::UnknownMasterKey {
                org: org.0,
                key_id: master_id.clone(),
            })?;
            let key = open(&master.key, &key_aad(org, version, &master_id), &wrapped).ok_or(
                VaultError::Tampered {
                    org: org.0,
                    what: "data key".into(),
                },
            )?;
            let rewrapped = seal(
                &ring.primary.key,
                &key_aad(org, version, &ring.primary.id),
                &key,
            )?;
            let done = sqlx::query(
                "UPDATE tenant_keys SET master_key_id = $1, wrapped = $2 \
                 WHERE org_id = $3 AND version = $4 AND master_key_id = $5",
            )
            .bind(&ring.primary.id)
            .bind(rewrapped)
            .bind(org.0)
            .bind(version)
            .bind(&master_id)
            .execute(store.pool())
            .await
            .op("re-sealing a data key")?
            .rows_affected();
            n += done;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_associated_data() {
        let k = [7u8; 32];
        let s = seal(&k, "a", b"token").unwrap();
        assert_eq!(open(&k, "a", &s).unwrap(), b"token");
        assert!(open(&k, "b", &s).is_none());
        assert!(open(&[8u8; 32], "a", &s).is_none());
        assert!(!s.contains(&hex::encode(b"token")));
    }

    #[test]
    fn master_keys_parse_from_hex_and_never_show_in_debug() {
        let text = MasterKey::generate().unwrap();
        let k = MasterKey::parse(&text).unwrap();
        assert_eq!(k.id().len(), 16);
        assert!(!format!("{k:?}").contains(text.expose()));
        assert!(MasterKey::parse(&Secret::new("abc")).is_err());
        assert_ne!(k.derive("a"), k.derive("b"));
    }
}
