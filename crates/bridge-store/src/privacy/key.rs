//! The digest key and the digests: HMAC-SHA256 of a normalized email or a Drift id, under a
//! random key kept in `privacy_key`; and the PostgreSQL lock between erasures and writes.

use ring::hmac;

use crate::{Backend, Conn, Op, Result};

/// PostgreSQL advisory lock between erasures (exclusive) and warehouse writes (shared), so a
/// write that read no tombstone cannot commit rows of a person erased meanwhile. (SQLite has
/// one writer: its transactions are serialized already.)
const PG_ERASURE_LOCK: i64 = 0x6472_6966_7465;

/// An email as erasures compare it: trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The digest key, made on first use.
#[derive(Clone)]
pub struct SubjectKey(hmac::Key);

impl std::fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubjectKey([redacted])")
    }
}

impl SubjectKey {
    /// The stored key, if an erasure ever made one.
    pub async fn load(conn: &mut Conn) -> Result<Option<SubjectKey>> {
        let hex: Option<String> =
            sqlx::query_scalar("SELECT key_hex FROM privacy_key WHERE id = 1")
                .fetch_optional(conn)
                .await
                .op("reading the privacy key")?;
        Ok(hex
            .and_then(|h| hex::decode(h).ok())
            .map(|k| SubjectKey::from_bytes(&k)))
    }

    /// The stored key, made now (inside the caller's transaction) when there is none.
    pub async fn load_or_create(conn: &mut Conn) -> Result<SubjectKey> {
        if let Some(k) = Self::load(conn).await? {
            return Ok(k);
        }
        let mut bytes = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| crate::error::VaultError::Random)?;
        sqlx::query(
            "INSERT INTO privacy_key (id, key_hex, created_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(hex::encode(bytes))
        .bind(drift_types::now_ms())
        .execute(&mut *conn)
        .await
        .op("creating the privacy key")?;
        // Another process may have made it first: read back whichever won.
        Ok(Self::load(conn)
            .await?
            .unwrap_or_else(|| SubjectKey::from_bytes(&bytes)))
    }

    fn from_bytes(k: &[u8]) -> SubjectKey {
        SubjectKey(hmac::Key::new(hmac::HMAC_SHA256, k))
    }

    fn digest(&self, kind: &str, value: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(kind.as_bytes());
        ctx.update(b"\0");
        ctx.update(value.as_bytes());
        hex::encode(ctx.sign().as_ref())
    }

    /// The digest of an email (normalized first).
    pub fn email(&self, email: &str) -> String {
        self.digest("email", &normalize_email(email))
    }

    /// The digest of a Drift contact id.
    pub fn contact(&self, id: i64) -> String {
        self.digest("contact", &id.to_string())
    }

    /// The digest of a Drift conversation id.
    pub fn conversation(&self, id: i64) -> String {
        self.digest("conversation", &id.to_string())
    }
}

/// Takes [`PG_ERASURE_LOCK`] for the caller's transaction (PostgreSQL only): the shared side
/// for a warehouse write, the exclusive side for an erasure, which so waits for the writes in
/// flight while later ones see its tombstones.
pub(crate) async fn erasure_lock(conn: &mut Conn, exclusive: bool) -> Result<()> {
    if Backend::of(conn) != Backend::Postgres {
        return Ok(());
    }
    let sql = if exclusive {
        "SELECT pg_advisory_xact_lock($1)"
    } else {
        "SELECT pg_advisory_xact_lock_shared($1)"
    };
    sqlx::query(sql)
        .bind(PG_ERASURE_LOCK)
        .execute(conn)
        .await
        .op("taking the erasure lock")?;
    Ok(())
}
