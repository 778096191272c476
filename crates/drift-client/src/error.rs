//! The client's error type, classified at the I/O edge: [`Error::is_retryable`] and
//! [`Error::retry_after`] are the one place that decides whether a failure is worth another try.

use std::time::Duration;

/// A failed Drift call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Drift answered with an error status.
    #[error("{endpoint}: Drift answered {status} {kind}: {message}")]
    Api {
        /// Endpoint name, e.g. `GET /conversations/{id}`.
        endpoint: &'static str,
        /// HTTP status.
        status: u16,
        /// Drift error type (`not_found`, `validation_error`, ...), empty if none was given.
        kind: String,
        /// Drift's message.
        message: String,
    },
    /// 429 Too Many Requests.
    #[error("{endpoint}: rate limited by Drift (retry after {retry_after:?})")]
    RateLimited {
        /// Endpoint name.
        endpoint: &'static str,
        /// `Retry-After`, when given.
        retry_after: Option<Duration>,
    },
    /// The request did not complete: connect error, reset, timeout, broken body.
    #[error("{endpoint} at {origin}: request failed")]
    /// The URL is stripped from the cause: query strings can carry credentials (the
    /// uninstall call sends the client secret there). Only the scheme, host and port are kept.
    Transport {
        /// Endpoint name.
        endpoint: &'static str,
        /// Scheme, host and port of the server (`https://driftapi.com`).
        origin: String,
        /// Cause.
        #[source]
        source: reqwest::Error,
    },
    /// Drift answered 2xx with a body we could not read.
    #[error("{endpoint}: could not decode Drift's response")]
    Decode {
        /// Endpoint name.
        endpoint: &'static str,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// The OAuth token could not be obtained or refreshed.
    #[error("OAuth token request failed: {message}")]
    Token {
        /// What went wrong.
        message: String,
        /// The failed call, if any.
        #[source]
        source: Option<Box<Error>>,
    },
    /// The token's request budget had no room within the client's `max_budget_wait`; the
    /// call was not sent.
    #[error("{endpoint}: this token's request budget has no room for {wait:?}; not sent")]
    BudgetSpent {
        /// Endpoint name.
        endpoint: &'static str,
        /// How long until there is room.
        wait: Duration,
    },
    /// The client was configured wrongly.
    #[error("invalid Drift client configuration: {0}")]
    Config(String),
}

impl Error {
    /// A transport error for `endpoint`, keeping where it went (scheme, host, port) and
    /// dropping the rest of the URL.
    pub fn transport(endpoint: &'static str, source: reqwest::Error) -> Self {
        let origin = source.url().map_or_else(
            || "an unknown server".to_owned(),
            |u| u.origin().ascii_serialization(),
        );
        Error::Transport {
            endpoint,
            origin,
            source: source.without_url(),
        }
    }

    /// Whether another try may succeed: 429, 408, 500/502/503/504, and transport failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. } => true,
            Self::Api { status, .. } => matches!(status, 408 | 500 | 502 | 503 | 504),
            Self::Transport { source, .. } => !source.is_builder() && !source.is_redirect(),
            Self::Decode { .. } | Self::Token { .. } | Self::Config(_) => false,
            // The caller chose not to wait; it decides when to try again.
            Self::BudgetSpent { .. } => false,
        }
    }

    /// Whether no later attempt can succeed either: Drift refused the request itself (400,
    /// 401 after the token was renewed, 403, 404, 410, 422). Everything else, including a
    /// failed token refresh, may work later, so a queue retries it with backoff.
    pub fn is_permanent(&self) -> bool {
        matches!(self.status(), Some(400 | 401 | 403 | 404 | 410 | 422))
    }

    /// How long until the token's budget has room, when the call gave up on it.
    pub fn budget_wait(&self) -> Option<Duration> {
        match self {
            Self::BudgetSpent { wait, .. } => Some(*wait),
            _ => None,
        }
    }

    /// How long Drift asked us to wait.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status, when Drift answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            Self::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// True for 404 / `not_found`.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { status: 404, .. })
            || matches!(self, Self::Api { kind, .. } if kind == "not_found")
    }

    /// True when the request certainly never reached Drift (connection refused and the like),
    /// so even a non-idempotent request may be sent again.
    pub(crate) fn never_sent(&self) -> bool {
        matches!(self, Self::Transport { source, .. } if source.is_connect())
    }
}

/// Client result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
