//! The request loop: budget, bearer token, send, classify, retry or refresh, decode.
//!
//! Retries use capped exponential backoff with jitter on 5xx, timeouts and resets, for
//! idempotent requests only; a POST is sent again only when it certainly never reached
//! Drift (connect error), was refused with 429, or was refused with 401 before a refresh.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use drift_types::ApiErrorBody;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use crate::auth::TokenSource;
use crate::budget::{Budget, RateBudget};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// REST base URL; `https://driftapi.com` for real Drift.
    pub base_url: Url,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Request budget per token.
    pub budget: RateBudget,
    /// Retries after the first try.
    pub max_retries: u32,
    /// First backoff; doubles per retry.
    pub backoff_base: Duration,
    /// Longest wait for room in the request budget before a call gives up with
    /// [`Error::BudgetSpent`] (`None`: wait as long as it takes, as an export does).
    pub max_budget_wait: Option<Duration>,
    /// Longest backoff.
    pub backoff_cap: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            base_url: Url::parse("https://driftapi.com/").unwrap_or_else(|_| unreachable!()),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            budget: RateBudget::default(),
            max_retries: 6,
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(30),
            max_budget_wait: None,
        }
    }
}

impl ClientConfig {
    /// Defaults with another base URL.
    pub fn with_base_url(base: &str) -> Result<Self> {
        let mut u =
            Url::parse(base).map_err(|e| Error::Config(format!("base URL {base:?}: {e}")))?;
        if !u.path().ends_with('/') {
            u.set_path(&format!("{}/", u.path()));
        }
        Ok(Self {
            base_url: u,
            ..Self::default()
        })
    }
}

/// Counters of what the client did.
#[derive(Debug, Default)]
pub struct Stats {
    /// HTTP requests sent (including retries).
    pub requests: AtomicU64,
    /// Retries.
    pub retries: AtomicU64,
    /// 429 answers.
    pub rate_limited: AtomicU64,
    /// Token refreshes triggered by a 401.
    pub unauthorized: AtomicU64,
    /// Responses by HTTP status; 0 counts transport failures (no response).
    by_status: parking_lot::Mutex<std::collections::BTreeMap<u16, u64>>,
}

impl Stats {
    fn count_status(&self, status: u16) {
        let mut m = self.by_status.lock();
        *m.entry(status).or_default() += 1;
    }

    /// Responses per HTTP status so far (0 = no response: connect error, reset, timeout).
    pub fn by_status(&self) -> std::collections::BTreeMap<u16, u64> {
        self.by_status.lock().clone()
    }
}

/// Whether a request may be repeated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Idempotent {
    Yes,
    No,
}

/// The Drift REST client. Cheap to clone; clones share the budget and token source.
#[derive(Clone, Debug)]
pub struct DriftClient {
    inner: Arc<Inner>,
    /// This handle's longest wait for budget room (handles share the budget itself).
    max_budget_wait: Option<Duration>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    tokens: Arc<dyn TokenSource>,
    budget: Budget,
    clock: Arc<dyn Clock>,
    stats: Stats,
}

pub(crate) struct Request<'a> {
    pub method: Method,
    pub endpoint: &'static str,
    /// Path relative to the base URL, or an absolute URL for `links.next`.
    pub path: String,
    pub query: Vec<(&'a str, String)>,
    pub body: Option<serde_json::Value>,
    pub idempotent: Idempotent,
}

impl<'a> Request<'a> {
    pub fn get(endpoint: &'static str, path: String) -> Self {
        Self::new(Method::GET, endpoint, path)
    }
    /// A bodiless request; only GET and DELETE are idempotent by default.
    pub fn new(method: Method, endpoint: &'static str, path: String) -> Self {
        let idempotent = if method == Method::GET || method == Method::DELETE {
            Idempotent::Yes
        } else {
            Idempotent::No
        };
        Self {
            method,
            endpoint,
            path,
            query: vec![],
            body: None,
            idempotent,
        }
    }
    pub fn send_json(
        method: Method,
        endpoint: &'static str,
        path: String,
        body: serde_json::Value,
        idempotent: Idempotent,
    ) -> Self {
        Self {
            method,
            endpoint,
            path,
            query: vec![],
            body: Some(body),
            idempotent,
        }
    }
    pub fn query(mut self, k: &'a str, v: impl ToString) -> Self {
        self.query.push((k, v.to_string()));
        self
    }
}

impl DriftClient {
    /// A client with `config` and `tokens`.
    pub fn new(config: ClientConfig, tokens: Arc<dyn TokenSource>) -> Result<Self> {
        Self::with_clock(config, tokens, Arc::new(SystemClock::default()))
    }

    /// A client whose pacing and backoff run on `clock`.
    pub fn with_clock(
        config: ClientConfig,
        tokens: Arc<dyn TokenSource>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        crate::tls::install_crypto();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("driftbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            max_budget_wait: config.max_budget_wait,
            inner: Arc::new(Inner {
                http,
                budget: Budget::new(config.budget),
                config,
                tokens,
                clock,
                stats: Stats::default(),
            }),
        })
    }

    /// Another handle on the same token, budget and counters whose calls wait for budget room
    /// at most `max` (`None`: as long as it takes). Jobs give their worker back rather than
    /// wait; an export on the same budget waits.
    pub fn with_max_budget_wait(&self, max: Option<Duration>) -> Self {
        Self {
            inner: self.inner.clone(),
            max_budget_wait: max,
        }
    }

    /// Requests the shared budget allows right now without waiting (`None`: no limit set).
    pub fn budget_room(&self) -> Option<u32> {
        self.inner.budget.room(self.inner.clock.as_ref())
    }

    /// Counters of what the client did.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// The base URL.
    pub fn base_url(&self) -> &Url {
        &self.inner.config.base_url
    }

    /// Backoff before retry `attempt` (1-based): half fixed, half random, capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let c = &self.inner.config;
        drift_types::retry::backoff(c.backoff_base, c.backoff_cap, attempt)
    }

    fn url(&self, path: &str) -> Result<Url> {
        if path.starts_with("http://") || path.starts_with("https://") {
            // links.next: keep its path and query, but on our configured host, so a
            // next link naming another Drift host alias still reaches the same API.
            let next =
                Url::parse(path).map_err(|e| Error::Config(format!("next link {path:?}: {e}")))?;
            let mut u = self
                .inner
                .config
                .base_url
                .join(next.path().trim_start_matches('/'))
                .map_err(|e| Error::Config(e.to_string()))?;
            u.set_query(next.query());
            return Ok(u);
        }
        self.inner
            .config
            .base_url
            .join(path.trim_start_matches('/'))
            .map_err(|e| Error::Config(format!("path {path:?}: {e}")))
    }

    /// Sends `req` until it succeeds or fails for good; answers the 2xx body bytes and headers.
    /// The body is the buffer the HTTP client collected it into, not a copy of it.
    pub(crate) async fn execute(
        &self,
        req: &Request<'_>,
    ) -> Result<(reqwest::header::HeaderMap, bytes::Bytes)> {
        let inner = &self.inner;
        let url = self.url(&req.path)?;
        let mut attempt = 0u32;
        let mut refreshed = false;
        loop {
            let token = inner.tokens.token().await?;
            if let Err(wait) = inner
                .budget
                .acquire_within(inner.clock.as_ref(), self.max_budget_wait)
                .await
            {
                return Err(Error::BudgetSpent {
                    endpoint: req.endpoint,
                    wait,
                });
            }
            inner.stats.requests.fetch_add(1, Ordering::Relaxed);
            let mut rb = inner
                .http
                .request(req.method.clone(), url.clone())
                .bearer_auth(token.expose());
            if !req.query.is_empty() {
                rb = rb.query(&req.query);
            }
            if let Some(body) = &req.body {
                rb = rb.json(body);
            }
            let outcome = match rb.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    inner.stats.count_status(status.as_u16());
                    let headers = resp.headers().clone();
                    match resp.bytes().await {
                        Ok(bytes) if status.is_success() => {
                            inner.budget.observe(inner.clock.as_ref(), &headers);
                            return Ok((headers, bytes));
                        }
                        Ok(bytes) => {
                            let err = classify(req.endpoint, status, &headers, &bytes);
                            if matches!(err, Error::RateLimited { .. }) {
                                inner.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                                let wait = err.retry_after().unwrap_or(Duration::from_secs(1));
                                inner.budget.pause(
                                    inner.clock.as_ref(),
                                    wait + drift_types::retry::jitter(Duration::from_millis(250)),
                                );
                            } else {
                                inner.budget.observe(inner.clock.as_ref(), &headers);
                            }
                            if status == StatusCode::UNAUTHORIZED && !refreshed {
                                refreshed = true;
                                inner.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
                                if inner.tokens.invalidate(&token).await? {
                                    continue;
                                }
                            }
                            err
                        }
                        Err(source) => {
                            inner.budget.release();
                            Error::transport(req.endpoint, source)
                        }
                    }
                }
                Err(source) => {
                    inner.budget.release();
                    inner.stats.count_status(0);
                    Error::transport(req.endpoint, source)
                }
            };
            let may_repeat = req.idempotent == Idempotent::Yes
                || matches!(outcome, Error::RateLimited { .. })
                || outcome.never_sent();
            if !(outcome.is_retryable() && may_repeat) || attempt >= inner.config.max_retries {
                return Err(outcome);
            }
            attempt += 1;
            inner.stats.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(endpoint = req.endpoint, attempt, error = %outcome, "retrying Drift call");
            if !matches!(outcome, Error::RateLimited { .. }) {
                inner.clock.sleep(self.backoff(attempt)).await;
            }
        }
    }

    pub(crate) async fn json<T: DeserializeOwned>(&self, req: Request<'_>) -> Result<T> {
        let (_, bytes) = self.execute(&req).await?;
        decode(req.endpoint, &bytes)
    }
}

/// Decodes a 2xx body. A lone surrogate escape in it (half of an emoji cut by a truncation) is
/// replaced by U+FFFD rather than failing the whole answer, which no retry would fix.
pub(crate) fn decode<T: DeserializeOwned>(endpoint: &'static str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(&drift_types::lenient::replace_lone_surrogates(bytes))
        .map_err(|source| Error::Decode { endpoint, source })
}

fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    drift_types::retry::retry_after(v, std::time::SystemTime::now())
}

fn classify(
    endpoint: &'static str,
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> Error {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Error::RateLimited {
            endpoint,
            retry_after: retry_after(headers),
        };
    }
    let parsed: Option<ApiErrorBody> = serde_json::from_slice(body).ok();
    let (kind, message) = match &parsed {
        Some(b) => (b.kind().to_owned(), b.message().to_owned()),
        None => (
            String::new(),
            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        ),
    };
    Error::Api {
        endpoint,
        status: status.as_u16(),
        kind,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
    }

    #[test]
    fn classification_decides_retryability() {
        let h = reqwest::header::HeaderMap::new();
        let e = classify("x", StatusCode::SERVICE_UNAVAILABLE, &h, b"{}");
        assert!(e.is_retryable());
        let e = classify(
            "x",
            StatusCode::NOT_FOUND,
            &h,
            br#"{"error":{"type":"not_found","message":"gone"}}"#,
        );
        assert!(!e.is_retryable() && e.is_not_found());
        let e = classify(
            "x",
            StatusCode::BAD_REQUEST,
            &h,
            br#"{"errors":[{"type":"validation_error","message":"bad","param":"limit"}]}"#,
        );
        assert!(matches!(e, Error::Api { ref kind, .. } if kind == "validation_error"));
    }
}
