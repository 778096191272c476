//! Standard Webhooks v1 signatures (crm-apis.md §5): HMAC-SHA256 over
//! `"{webhook-id}.{webhook-timestamp}.{body}"`, base64, sent as `webhook-signature: v1,<sig>`.
//! Secrets are shown as `whsec_<base64 of 24-64 random bytes>`.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;

/// Why a secret or a signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    /// Not `whsec_` + base64 of 24 to 64 bytes.
    #[error("a webhook secret must be whsec_ followed by base64 of 24 to 64 random bytes")]
    BadSecret,
    /// A required header is missing or malformed.
    #[error("missing or malformed webhook-id, webhook-timestamp or webhook-signature")]
    MissingHeaders,
    /// The timestamp is outside the tolerance.
    #[error("the webhook timestamp is more than 5 minutes away from now")]
    Timestamp,
    /// No listed signature matches.
    #[error("no matching signature")]
    NoMatch,
}

/// An endpoint's signing secret; `Debug` never shows it.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

/// How far a timestamp may be from now (the reference libraries' 5 minutes).
pub const TOLERANCE_SECS: i64 = 300;

impl WebhookSecret {
    /// Parses `whsec_<base64>`.
    pub fn parse(text: &str) -> Result<Self, SignError> {
        let b64 = text
            .trim()
            .strip_prefix("whsec_")
            .ok_or(SignError::BadSecret)?;
        let key = STANDARD.decode(b64).map_err(|_| SignError::BadSecret)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SignError::BadSecret);
        }
        Ok(WebhookSecret(key))
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(msg_id.as_bytes());
        ctx.update(b".");
        ctx.update(timestamp.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body);
        format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
    }

    /// Checks a delivery the way a receiver does: the timestamp within tolerance of `now`
    /// (Unix seconds) and one of the space-separated signatures matching, in constant time.
    pub fn verify(
        &self,
        msg_id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignError> {
        let ts: i64 = timestamp.parse().map_err(|_| SignError::MissingHeaders)?;
        if (now - ts).abs() > TOLERANCE_SECS {
            return Err(SignError::Timestamp);
        }
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let signed = [msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", body].concat();
        let ok = signatures.split(' ').any(|s| {
            s.strip_prefix("v1,")
                .and_then(|b| STANDARD.decode(b).ok())
                .is_some_and(|tag| hmac::verify(&key, &signed, &tag).is_ok())
        });
        if ok { Ok(()) } else { Err(SignError::NoMatch) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specs_test_vectors_sign_and_verify() {
        let s = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = s.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let s2 = WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            s2.sign(
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1_649_367_553,
                br#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        s.verify(
            id,
            "1614265330",
            &format!("v0,xx {sig}"),
            body,
            1_614_265_330,
        )
        .unwrap();
        assert_eq!(
            s.verify(id, "1614265330", &sig, b"{}", 1_614_265_330),
            Err(SignError::NoMatch)
        );
        assert_eq!(
            s.verify(id, "1614265330", &sig, body, 1_614_265_330 + 301),
            Err(SignError::Timestamp)
        );
        assert_eq!(
            WebhookSecret::parse("secret").unwrap_err(),
            SignError::BadSecret
        );
        assert!(!format!("{s:?}").contains("MfKQ"));
    }
}
