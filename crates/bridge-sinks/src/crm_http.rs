//! What the CRM clients share: one guarded HTTP client per CRM, one exchange (send, status,
//! headers, body) whose transport failures are classified once, one status classification,
//! and `Retry-After` in both of its forms.

use std::time::Duration;

use crate::outbound::OutboundGuard;
use crate::sink::SinkError;

/// Reads a response body as text, at most `max` characters (for error messages).
pub(crate) async fn body_text(resp: reqwest::Response, max: usize) -> String {
    resp.text()
        .await
        .unwrap_or_default()
        .chars()
        .take(max)
        .collect()
}

/// `Retry-After`, when present: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    drift_types::retry::retry_after(v, std::time::SystemTime::now())
}

/// A CRM's answer: its status, headers, and the first `max_body` characters of its body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

/// Sends `req` to `what`. No answer is a retry (its error without the URL, which may carry
/// secrets), except the outbound guard's refusal, which is final.
pub(crate) async fn exchange(
    req: reqwest::RequestBuilder,
    what: &str,
    max_body: usize,
) -> Result<Reply, SinkError> {
    let resp = req
        .send()
        .await
        .map_err(|e| match crate::outbound::refusal(&e) {
            Some(r) => SinkError::rejected(format!("{what}: {r}")),
            None => SinkError::retry(format!("{what}: no answer")).with_source(e.without_url()),
        })?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = body_text(resp, max_body).await;
    Ok(Reply {
        status,
        headers,
        text,
    })
}

/// A failure judged by its status alone: 429 and 5xx are worth another try, the rest is a
/// refusal.
pub(crate) fn by_status(status: u16, message: String) -> SinkError {
    if status == 429 || status >= 500 {
        SinkError::retry(message)
    } else {
        SinkError::rejected(message)
    }
    .with_status(status)
}

/// Builds a guarded client for a CRM (no redirects: CRM APIs do not redirect writes).
pub(crate) fn client(guard: &OutboundGuard) -> Result<reqwest::Client, SinkError> {
    guard
        .client(
            reqwest::Client::builder().timeout(Duration::from_secs(30)),
            false,
        )
        .map_err(|e| SinkError::rejected(format!("HTTP client: {e}")))
}

/// Checks a configured base URL against the guard (a host that does not resolve yet is
/// accepted: its deliveries retry, and the guard checks again at connect time).
pub(crate) async fn checked(guard: &OutboundGuard, url: &str) -> Result<String, SinkError> {
    guard
        .check_configured(url)
        .await
        .map_err(|e| SinkError::rejected(e.to_string()))?;
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_an_http_date_is_a_wait_not_ignored() {
        let mut h = reqwest::header::HeaderMap::new();
        let later = std::time::SystemTime::now() + Duration::from_secs(90);
        h.insert(
            reqwest::header::RETRY_AFTER,
            httpdate::fmt_http_date(later).parse().unwrap(),
        );
        let wait = retry_after(&h).expect("an HTTP date is a valid Retry-After");
        assert!(
            wait > Duration::from_secs(80) && wait <= Duration::from_secs(90),
            "{wait:?}"
        );
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
    }

    #[test]
    fn a_failure_judged_by_status_keeps_the_status() {
        let e = by_status(503, "down".into());
        assert!(matches!(e, SinkError::Retry { .. }));
        assert_eq!(e.status(), Some(503));
        let e = by_status(400, "bad field".into()).with_code("INVALID_FIELD");
        assert!(matches!(e, SinkError::Rejected { .. }));
        assert_eq!((e.status(), e.code()), (Some(400), Some("INVALID_FIELD")));
    }
}
