//! Tokens, authorization codes and scopes (drift-api.md §2, §3).
//!
//! Private-app tokens ("Install to Drift") never expire. OAuth access tokens expire after the
//! configured lifetime; a refresh rotates the refresh token and invalidates the old one.
//! Codes are one-time-use.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use drift_types::OrgId;

use crate::rng::Rng;

/// Every scope the simulator knows.
pub const ALL_SCOPES: &[&str] = &[
    "contact_read",
    "contact_write",
    "all_contact_read",
    "conversation_read",
    "conversation_write",
    "user_read",
    "user_write",
    "account_read",
    "account_write",
    "playbook_read",
    "gdpr_read",
    "gdpr_write",
];

/// An issued access token.
#[derive(Clone, Debug)]
pub struct TokenRecord {
    /// The org it acts for.
    pub org: OrgId,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Expiry; `None` never expires.
    pub expires_at: Option<Instant>,
    /// Creation time (epoch ms).
    pub created_at_ms: i64,
    /// Token record id.
    pub id: String,
    /// Client id of the app.
    pub client_id: String,
    /// Revoked by uninstall.
    pub revoked: bool,
}

/// Why a bearer token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenProblem {
    /// Not issued by us.
    Unknown,
    /// Past its lifetime.
    Expired,
    /// Revoked by `/app/uninstall`.
    Revoked,
}

#[derive(Clone, Debug)]
struct CodeRecord {
    org: OrgId,
    redirect_uri: String,
    expires_at: Instant,
}

#[derive(Clone, Debug)]
struct RefreshRecord {
    org: OrgId,
    scopes: Vec<String>,
}

/// The token store.
#[derive(Debug)]
pub struct AuthStore {
    tokens: HashMap<String, TokenRecord>,
    refresh: HashMap<String, RefreshRecord>,
    codes: HashMap<String, CodeRecord>,
    rng: Rng,
    /// Count of successful code exchanges.
    pub exchanges: u64,
    /// Count of successful refreshes.
    pub refreshes: u64,
}

/// A freshly issued token pair.
#[derive(Clone, Debug)]
pub struct Issued {
    /// Access token.
    pub access_token: String,
    /// Refresh token (OAuth only).
    pub refresh_token: String,
    /// Org.
    pub org: OrgId,
    /// Scopes.
    pub scopes: Vec<String>,
}

/// Code lifetime: long enough for a human to click approve, short enough to be one-shot.
const CODE_TTL: Duration = Duration::from_secs(600);

impl AuthStore {
    /// An empty store whose random tokens come from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            tokens: HashMap::new(),
            refresh: HashMap::new(),
            codes: HashMap::new(),
            rng: Rng::derive(seed, 0xA17),
            exchanges: 0,
            refreshes: 0,
        }
    }

    fn random(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| ALPHABET[self.rng.below(ALPHABET.len() as u64) as usize] as char)
            .collect()
    }

    /// Registers a non-expiring private-app token; random when `token` is `None`.
    pub fn add_private_token(
        &mut self,
        org: OrgId,
        token: Option<String>,
        client_id: &str,
        now_ms: i64,
    ) -> String {
        let token = token.unwrap_or_else(|| self.random(30));
        let id = self.random(12);
        self.tokens.insert(
            token.clone(),
            TokenRecord {
                org,
                scopes: ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
                expires_at: None,
                created_at_ms: now_ms,
                id,
                client_id: client_id.to_owned(),
                revoked: false,
            },
        );
        token
    }

    /// Looks a bearer token up.
    pub fn validate(&self, token: &str, now: Instant) -> Result<&TokenRecord, TokenProblem> {
        let rec = self.tokens.get(token).ok_or(TokenProblem::Unknown)?;
        if rec.revoked {
            return Err(TokenProblem::Revoked);
        }
        if rec.expires_at.is_some_and(|e| e <= now) {
            return Err(TokenProblem::Expired);
        }
        Ok(rec)
    }

    /// Every access and refresh token issued to the org's OAuth installs (for tests that
    /// look for leaked secrets).
    pub fn oauth_tokens_of(&self, org: OrgId) -> Vec<String> {
        let access = self
            .tokens
            .iter()
            .filter(|(_, r)| r.org == org && r.expires_at.is_some())
            .map(|(t, _)| t.clone());
        let refresh = self
            .refresh
            .iter()
            .filter(|(_, r)| r.org == org)
            .map(|(t, _)| t.clone());
        access.chain(refresh).collect()
    }

    /// The record, valid or not.
    pub fn get(&self, token: &str) -> Option<&TokenRecord> {
        self.tokens.get(token)
    }

    /// Issues a one-time authorization code.
    pub fn issue_code(&mut self, org: OrgId, redirect_uri: &str, now: Instant) -> String {
        let code = self.random(24);
        self.codes.insert(
            code.clone(),
            CodeRecord {
                org,
                redirect_uri: redirect_uri.to_owned(),
                expires_at: now + CODE_TTL,
            },
        );
        code
    }

    fn issue(
        &mut self,
        org: OrgId,
        scopes: Vec<String>,
        ttl: Duration,
        client_id: &str,
        now: Instant,
        now_ms: i64,
    ) -> Issued {
        let access_token = self.random(32);
        let refresh_token = self.random(32);
        let id = self.random(12);
        self.tokens.insert(
            access_token.clone(),
            TokenRecord {
                org,
                scopes: scopes.clone(),
                expires_at: Some(now + ttl),
                created_at_ms: now_ms,
                id,
                client_id: client_id.to_owned(),
                revoked: false,
            },
        );
        self.refresh.insert(
            refresh_token.clone(),
            RefreshRecord {
                org,
                scopes: scopes.clone(),
            },
        );
        Issued {
            access_token,
            refresh_token,
            org,
            scopes,
        }
    }

    /// Exchanges a code (consumed whether or not the exchange succeeds).
    #[allow(clippy::too_many_arguments)]
    pub fn exchange_code(
        &mut self,
        code: &str,
        redirect_uri: Option<&str>,
        scopes: &[String],
        ttl: Duration,
        client_id: &str,
        now: Instant,
        now_ms: i64,
    ) -> Result<Issued, &'static str> {
        let rec = self
            .codes
            .remove(code)
            .ok_or("the code is unknown or was already used")?;
        if rec.expires_at <= now {
            return Err("the code has expired");
        }
        if redirect_uri.is_some_and(|r| r != rec.redirect_uri) {
            return Err("redirect_uri does not match the authorization request");
        }
        self.exchanges += 1;
        Ok(self.issue(rec.org, scopes.to_vec(), ttl, client_id, now, now_ms))
    }

    /// Rotates a refresh token: the old one stops working.
    pub fn refresh(
        &mut self,
        refresh_token: &str,
        ttl: Duration,
        client_id: &str,
        now: Instant,
        now_ms: i64,
    ) -> Result<Issued, &'static str> {
        let rec = self
            .refresh
            .remove(refresh_token)
            .ok_or("the refresh token is unknown, rotated or revoked")?;
        self.refreshes += 1;
        Ok(self.issue(rec.org, rec.scopes, ttl, client_id, now, now_ms))
    }

    /// Makes an access token expire now (for tests of refresh).
    pub fn expire(&mut self, token: &str, now: Instant) -> bool {
        match self.tokens.get_mut(token) {
            Some(rec) => {
                rec.expires_at = Some(now);
                true
            }
            None => false,
        }
    }

    /// Uninstall: revokes every token and refresh token of `org` for `client_id`.
    pub fn revoke_org(&mut self, org: OrgId, client_id: &str) -> usize {
        let mut n = 0;
        for rec in self.tokens.values_mut() {
            if rec.org == org && rec.client_id == client_id && !rec.revoked {
                rec.revoked = true;
                n += 1;
            }
        }
        self.refresh.retain(|_, r| r.org != org);
        n
    }
}
