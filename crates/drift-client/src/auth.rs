//! OAuth for Drift apps (drift-api.md §2): the authorize URL with `state`, the code exchange,
//! refresh with rotation, and [`TokenSource`]s that hand the client a bearer token.
//!
//! [`RefreshingToken`] refreshes shortly before expiry or after a 401, at most once however
//! many callers notice at the same time (single flight), and passes every new token set,
//! with its rotated refresh token, to a callback so the caller can persist it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use drift_types::{ApiErrorBody, OrgId, Secret, TokenResponse};
use futures::future::BoxFuture;
use url::Url;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};

/// Refresh this long before the access token expires, so no request carries a token that
/// expires in flight.
pub const REFRESH_SKEW: Duration = Duration::from_secs(60);

/// Access token, rotated refresh token and expiry, as persisted by the caller.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenSet {
    /// Bearer token.
    pub access_token: Secret,
    /// Refresh token; Drift rotates it on every refresh.
    pub refresh_token: Option<Secret>,
    /// Expiry; `None` never expires.
    pub expires_at: Option<SystemTime>,
    /// The org the token acts for.
    pub org_id: Option<OrgId>,
}

impl TokenSet {
    /// From a token response received at `now`.
    pub fn from_response(r: TokenResponse, now: SystemTime) -> Self {
        Self {
            access_token: r.access_token,
            refresh_token: r.refresh_token,
            expires_at: r
                .expires_in
                .filter(|s| *s > 0)
                .map(|s| now + Duration::from_secs(s)),
            org_id: r.org_id,
        }
    }

    fn expires_soon(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|e| now + REFRESH_SKEW >= e)
    }
}

/// Something that supplies bearer tokens.
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// A token to send now.
    fn token(&self) -> BoxFuture<'_, Result<Secret>>;
    /// `stale` was refused with 401; returns true when a different token is now available.
    fn invalidate<'a>(&'a self, stale: &'a Secret) -> BoxFuture<'a, Result<bool>>;
}

/// A fixed token, e.g. a private app's non-expiring "Install to Drift" token.
#[derive(Clone, Debug)]
pub struct StaticToken(pub Secret);

impl TokenSource for StaticToken {
    fn token(&self) -> BoxFuture<'_, Result<Secret>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
    fn invalidate<'a>(&'a self, _stale: &'a Secret) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async { Ok(false) })
    }
}

/// The Drift app's OAuth settings and endpoints.
#[derive(Clone)]
pub struct OAuthApp {
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: Secret,
    /// Redirect URL registered with the app.
    pub redirect_uri: String,
    /// `https://dev.drift.com/authorize` by default.
    pub authorize_url: Url,
    /// `https://driftapi.com/oauth2/token` by default.
    pub token_url: Url,
    http: reqwest::Client,
}

impl fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthApp")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("redirect_uri", &self.redirect_uri)
            .field("authorize_url", &self.authorize_url.as_str())
            .field("token_url", &self.token_url.as_str())
            .finish()
    }
}

/// Token requests must not hang a refresh forever.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

impl OAuthApp {
    /// An app using Drift's public endpoints.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: Secret,
        redirect_uri: impl Into<String>,
    ) -> Result<Self> {
        Self::with_endpoints(
            client_id,
            client_secret,
            redirect_uri,
            "https://dev.drift.com/authorize",
            "https://driftapi.com/oauth2/token",
        )
    }

    /// An app using the given authorize and token URLs (e.g. the simulator's).
    pub fn with_endpoints(
        client_id: impl Into<String>,
        client_secret: Secret,
        redirect_uri: impl Into<String>,
        authorize_url: &str,
        token_url: &str,
    ) -> Result<Self> {
        crate::tls::install_crypto();
        let parse = |what: &str, u: &str| {
            Url::parse(u).map_err(|e| Error::Config(format!("{what} {u:?}: {e}")))
        };
        Ok(Self {
            client_id: client_id.into(),
            client_secret,
            redirect_uri: redirect_uri.into(),
            authorize_url: parse("authorize URL", authorize_url)?,
            token_url: parse("token URL", token_url)?,
            http: reqwest::Client::builder()
                .timeout(TOKEN_TIMEOUT)
                .build()
                .map_err(|e| Error::Config(format!("HTTP client: {e}")))?,
        })
    }

    /// The URL to send the installing admin to; `state` comes back with the code.
    pub fn authorize_url(&self, state: &str) -> Url {
        let mut u = self.authorize_url.clone();
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("state", state);
        u
    }

    async fn token_request(&self, form: &[(&str, &str)], now: SystemTime) -> Result<TokenSet> {
        const EP: &str = "POST /oauth2/token";
        let resp = self
            .http
            .post(self.token_url.clone())
            .form(form)
            .send()
            .await
            .map_err(|source| Error::Token {
                message: "could not reach the token endpoint".into(),
                source: Some(Box::new(Error::transport(EP, source))),
            })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|source| Error::Token {
            message: "the token response broke off".into(),
            source: Some(Box::new(Error::transport(EP, source))),
        })?;
        if !status.is_success() {
            let body: Option<ApiErrorBody> = serde_json::from_slice(&bytes).ok();
            return Err(Error::Token {
                message: format!(
                    "Drift answered {status}: {}",
                    body.as_ref().map_or("", |b| b.message())
                ),
                source: None,
            });
        }
        let r: TokenResponse = serde_json::from_slice(&bytes).map_err(|source| Error::Token {
            message: "the token response is not a token".into(),
            source: Some(Box::new(Error::Decode {
                endpoint: EP,
                source,
            })),
        })?;
        Ok(TokenSet::from_response(r, now))
    }

    /// Exchanges an authorization code (one-time use; never retried).
    pub async fn exchange_code(&self, code: &str) -> Result<TokenSet> {
        self.token_request(
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &self.client_id),
                ("client_secret", self.client_secret.expose()),
                ("code", code),
                ("redirect_uri", &self.redirect_uri),
            ],
            SystemTime::now(),
        )
        .await
    }

    /// Exchanges a refresh token for a new token set (with a rotated refresh token).
    pub async fn refresh(&self, refresh_token: &Secret, now: SystemTime) -> Result<TokenSet> {
        self.token_request(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &self.client_id),
                ("client_secret", self.client_secret.expose()),
                ("refresh_token", refresh_token.expose()),
            ],
            now,
        )
        .await
    }
}

/// Called with every refreshed token set and awaited before the new access token is handed
/// out, so the rotated refresh token is persisted first: a crash right after a refresh never
/// leaves only the old, now invalid, refresh token on disk.
pub type OnRefresh = Arc<dyn Fn(TokenSet) -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// An OAuth token that refreshes itself.
pub struct RefreshingToken {
    app: OAuthApp,
    current: tokio::sync::Mutex<Current>,
    clock: Arc<dyn Clock>,
    on_refresh: Option<OnRefresh>,
    refreshes: AtomicU64,
}

#[derive(Debug)]
struct Current {
    tokens: TokenSet,
    /// A refreshed set whose persistence failed; retried before the token is used.
    unsaved: bool,
}

impl fmt::Debug for RefreshingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshingToken")
            .field("app", &self.app)
            .field("refreshes", &self.refreshes)
            .finish_non_exhaustive()
    }
}

impl RefreshingToken {
    /// Starts from a stored token set.
    pub fn new(app: OAuthApp, tokens: TokenSet) -> Self {
        Self {
            app,
            current: tokio::sync::Mutex::new(Current {
                tokens,
                unsaved: false,
            }),
            clock: Arc::new(SystemClock::default()),
            on_refresh: None,
            refreshes: AtomicU64::new(0),
        }
    }

    /// Uses `clock` for expiry decisions.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Calls `f` with every new token set.
    pub fn on_refresh(mut self, f: OnRefresh) -> Self {
        self.on_refresh = Some(f);
        self
    }

    /// Refreshes performed so far.
    pub fn refresh_count(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// The current token set.
    pub async fn current(&self) -> TokenSet {
        self.current.lock().await.tokens.clone()
    }

    async fn save(&self, cur: &mut Current) -> Result<()> {
        if let Some(f) = &self.on_refresh {
            f(cur.tokens.clone()).await?;
        }
        cur.unsaved = false;
        Ok(())
    }

    /// Hands out the current access token, refreshing first when it expires soon, and never
    /// before a refreshed set is persisted.
    async fn usable(&self, cur: &mut Current) -> Result<Secret> {
        if cur.unsaved {
            self.save(cur).await?;
        }
        if cur.tokens.expires_soon(self.clock.wall()) {
            self.refresh_locked(cur).await?;
        }
        Ok(cur.tokens.access_token.clone())
    }

    async fn refresh_locked(&self, cur: &mut Current) -> Result<()> {
        let rt = cur
            .tokens
            .refresh_token
            .clone()
            .ok_or_else(|| Error::Token {
                message: "the access token expired and there is no refresh token".into(),
                source: None,
            })?;
        let mut next = self.app.refresh(&rt, self.clock.wall()).await?;
        if next.org_id.is_none() {
            next.org_id = cur.tokens.org_id;
        }
        if next.refresh_token.is_none() {
            next.refresh_token = Some(rt);
        }
        // The old refresh token is spent: keep the new set even if saving it fails, and save
        // again before the next use.
        cur.tokens = next;
        cur.unsaved = true;
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        tracing::info!(org.id = ?cur.tokens.org_id, "refreshed Drift access token");
        self.save(cur).await
    }
}

impl TokenSource for RefreshingToken {
    fn token(&self) -> BoxFuture<'_, Result<Secret>> {
        Box::pin(async move {
            let mut cur = self.current.lock().await;
            self.usable(&mut cur).await
        })
    }

    fn invalidate<'a>(&'a self, stale: &'a Secret) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let mut cur = self.current.lock().await;
            if cur.tokens.access_token != *stale {
                return Ok(true); // someone else refreshed already
            }
            self.refresh_locked(&mut cur).await?;
            Ok(true)
        })
    }
}
