//! Request middleware: the request log, fault injection, and bearer authentication with
//! per-token rate limiting and the `X-RateLimit-*` headers.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use drift_types::OrgId;

use crate::auth::TokenProblem;
use crate::faults::FaultAction;
use crate::state::{LoggedRequest, SimError, SimState};

/// The authenticated caller of a REST request.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The token's org.
    pub org: OrgId,
    /// Granted scopes.
    pub scopes: Arc<[String]>,
}

impl Caller {
    /// 403 `authorization_error` unless `scope` was granted.
    pub fn require(&self, scope: &str) -> Result<(), SimError> {
        if self.scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(SimError::new(
                StatusCode::FORBIDDEN,
                "authorization_error",
                format!("this token lacks the {scope} scope"),
            ))
        }
    }
}

/// Logs every request with its route template and final status.
pub async fn log_requests(State(st): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_owned(), |m| m.as_str().to_owned());
    let resp = next.run(req).await;
    let at_ms = st.started.elapsed().as_millis() as u64;
    st.log.lock().record(LoggedRequest {
        method,
        route,
        uri,
        status: resp.status().as_u16(),
        at_ms,
    });
    resp
}

/// Applies the first matching fault rule.
pub async fn inject_faults(State(st): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    let (latency, action) = {
        let mut rng = st.rng.lock();
        st.faults
            .lock()
            .decide(req.method().as_str(), req.uri().path(), &mut rng)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match action {
        None => next.run(req).await,
        Some(FaultAction::Error(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            SimError::new(status, "server_error", "injected server error").into_response()
        }
        Some(FaultAction::RateLimited(secs)) => rate_limited(secs),
        Some(FaultAction::Reset) => reset(),
        Some(FaultAction::Timeout(hold)) => {
            tokio::time::sleep(hold).await;
            SimError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "server_error",
                "injected timeout",
            )
            .into_response()
        }
    }
}

fn rate_limited(retry_after: u64) -> Response {
    let mut e = SimError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_error",
        "API rate limit exceeded",
    );
    e.retry_after = Some(retry_after);
    e.into_response()
}

/// A response whose body fails before any byte: hyper drops the connection, so the client
/// sees a reset instead of an answer.
fn reset() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected connection reset",
        ))
    });
    Response::new(Body::from_stream(stream))
}

fn bearer(req: &Request) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Authenticates the bearer token, applies the rate limit and adds the limit headers.
pub async fn authenticate(
    State(st): State<Arc<SimState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer(&req).map(str::to_owned) else {
        return SimError::unauthenticated("missing Authorization: Bearer token").into_response();
    };
    let now = Instant::now();
    let caller = match st.auth.lock().validate(&token, now) {
        Ok(rec) => Caller {
            org: rec.org,
            scopes: rec.scopes.clone().into(),
        },
        Err(p) => {
            let msg = match p {
                TokenProblem::Unknown => "the access token is invalid",
                TokenProblem::Expired => "the access token has expired",
                TokenProblem::Revoked => "the access token was revoked",
            };
            return SimError::unauthenticated(msg).into_response();
        }
    };
    let decision = st.limiter.lock().check(&token, now);
    if let Some(d) = decision
        && !d.allowed
    {
        let mut resp = rate_limited(d.retry_after.as_secs_f64().ceil().max(1.0) as u64);
        add_limit_headers(&mut resp, d.limit, 0, d.reset_secs);
        return resp;
    }
    req.extensions_mut().insert(caller);
    let mut resp = next.run(req).await;
    if let Some(d) = decision {
        add_limit_headers(&mut resp, d.limit, d.remaining, d.reset_secs);
    }
    resp
}

fn add_limit_headers(resp: &mut Response, limit: u32, remaining: u32, reset: u64) {
    let h = resp.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    h.insert("x-ratelimit-reset", HeaderValue::from(reset));
}
