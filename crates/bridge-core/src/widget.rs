//! The widget bridge's settings and its trust (docs/WIDGET.md): the sites allowed to post
//! widget events, how each proves itself (a signed visitor token, or only its origins), and
//! the per-site signing secrets sealed in the vault.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use bridge_store::Store;
use bridge_store::vault::Vault;
use drift_types::Secret;
use ring::hmac;
use serde::{Deserialize, Serialize};

use crate::sink_secrets::INSTALLATION;

/// `[widget]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WidgetConfig {
    /// The sites (`[[widget.sites]]`); none: `/widget/events` refuses everything.
    pub sites: Vec<SiteConfig>,
    /// Events per second one client address may post (sustained).
    pub per_ip_per_sec: u32,
    /// ... and in a burst.
    pub per_ip_burst: u32,
    /// Events per second one site may post, all visitors together.
    pub per_site_per_sec: u32,
    /// ... and in a burst.
    pub per_site_burst: u32,
    /// Largest request body.
    pub max_batch_bytes: usize,
    /// Most events in one request.
    pub max_events: usize,
    /// How far in the future an event's timestamp may be (the browser's clock runs ahead).
    pub max_future_secs: u64,
    /// How old an event may be when it arrives (a batch held by a closed laptop).
    pub max_age_secs: u64,
    /// Longest lifetime a signed token may have.
    pub max_token_secs: u64,
    /// Proxies whose `X-Forwarded-For` names the client (the rightmost address they did not
    /// add); from any other peer the header is ignored.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for WidgetConfig {
    fn default() -> Self {
        WidgetConfig {
            sites: Vec::new(),
            per_ip_per_sec: 20,
            per_ip_burst: 100,
            per_site_per_sec: 500,
            per_site_burst: 2000,
            max_batch_bytes: 64 * 1024,
            max_events: 50,
            max_future_secs: 300,
            max_age_secs: 86_400,
            max_token_secs: 86_400,
            trusted_proxies: Vec::new(),
        }
    }
}

/// How a site proves its events come from its own pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SiteMode {
    /// The site's backend mints a short-lived token per visitor (HMAC with the site's secret);
    /// the origin must be allowed too.
    Signed,
    /// Only the origin is checked (any page can claim any visitor id), with rate limits.
    Public,
}

/// `[[widget.sites]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// The public site key the page's script tag names (`data-site`).
    pub key: String,
    /// The Drift org its conversations belong to.
    pub org_id: i64,
    /// Origins its pages are served from (`https://www.example.com`), exactly.
    pub origins: Vec<String>,
    /// `signed` or `public`.
    pub mode: SiteMode,
    /// Keep emails and phone numbers from `emailCapture` and `phoneCapture` (off: the script
    /// never sends them and the intake drops any that arrive).
    #[serde(default)]
    pub collect_contact: bool,
}

impl WidgetConfig {
    /// Every problem of the section, each naming its setting.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (i, s) in self.sites.iter().enumerate() {
            let at = format!("widget.sites[{i}]");
            if !valid_id(&s.key) {
                p.push(format!(
                    "{at}.key {:?} must be 1 to 64 letters, digits, '-' or '_'",
                    s.key
                ));
            }
            if !seen.insert(s.key.clone()) {
                p.push(format!("{at}.key {:?} is listed twice", s.key));
            }
            if s.org_id <= 0 {
                p.push(format!("{at}.org_id must be a Drift org id"));
            }
            if s.origins.is_empty() {
                p.push(format!(
                    "{at}.origins is empty: list the origins its pages are served from"
                ));
            }
            for o in &s.origins {
                if !is_origin(o) {
                    p.push(format!(
                        "{at}.origins holds {o:?}, not an origin like https://www.example.com \
                         (scheme and host, no path)"
                    ));
                }
            }
        }
        for (name, v) in [
            ("per_ip_per_sec", self.per_ip_per_sec),
            ("per_ip_burst", self.per_ip_burst),
            ("per_site_per_sec", self.per_site_per_sec),
            ("per_site_burst", self.per_site_burst),
        ] {
            if v == 0 {
                p.push(format!("widget.{name} must be at least 1"));
            }
        }
        if self.max_events == 0 || self.max_batch_bytes < 1024 {
            p.push(
                "widget.max_events must be at least 1 and widget.max_batch_bytes at least 1024"
                    .into(),
            );
        }
        p
    }

    /// The site with this key.
    pub fn site(&self, key: &str) -> Option<&SiteConfig> {
        self.sites.iter().find(|s| s.key == key)
    }
}

fn is_origin(o: &str) -> bool {
    url::Url::parse(o).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host_str().is_some()
            && u.path() == "/"
            && u.query().is_none()
            && !o.ends_with('/')
    })
}

/// Site keys, visitor ids, session ids and event ids: 1 to 64 of `[A-Za-z0-9_-]`.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Why a signed token was refused (the intake answers 401 with these words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token on a signed site.
    #[error("this site is signed: the batch needs the token its backend minted")]
    Missing,
    /// Not `v1.VISITOR.EXPIRY.SIGNATURE`.
    #[error("the token is not v1.VISITOR.EXPIRY.SIGNATURE")]
    Malformed,
    /// The signature does not match.
    #[error("the token's signature does not verify with the site's secret")]
    BadSignature,
    /// Past its expiry.
    #[error("the token expired")]
    Expired,
    /// Valid for longer than allowed.
    #[error("the token is valid for longer than widget.max_token_secs allows")]
    TooLong,
    /// The site has no secret in the vault yet.
    #[error("the site has no secret yet: run `driftbridge widget secret SITE`")]
    NoSecret,
}

fn signature(secret: &Secret, site: &str, visitor: &str, exp: i64) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
    hmac::sign(&key, format!("v1.{site}.{visitor}.{exp}").as_bytes())
}

/// A token for `visitor` of `site` valid until `exp` (epoch seconds): what the site's backend
/// does (docs/WIDGET.md has it in Python and Node).
pub fn mint(secret: &Secret, site: &str, visitor: &str, exp: i64) -> String {
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(signature(secret, site, visitor, exp).as_ref());
    format!("v1.{visitor}.{exp}.{sig}")
}

/// Verifies a token of `site` at `now` (epoch seconds); answers the visitor it names.
pub fn verify(
    secret: &Secret,
    site: &str,
    token: &str,
    now: i64,
    max_secs: u64,
) -> Result<String, TokenError> {
    let mut parts = token.split('.');
    let (Some("v1"), Some(visitor), Some(exp), Some(sig), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(TokenError::Malformed);
    };
    let exp: i64 = exp.parse().map_err(|_| TokenError::Malformed)?;
    if !valid_id(visitor) {
        return Err(TokenError::Malformed);
    }
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| TokenError::Malformed)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
    // ring compares in constant time.
    hmac::verify(&key, format!("v1.{site}.{visitor}.{exp}").as_bytes(), &sig)
        .map_err(|_| TokenError::BadSignature)?;
    if exp <= now {
        return Err(TokenError::Expired);
    }
    if exp - now > max_secs as i64 {
        return Err(TokenError::TooLong);
    }
    Ok(visitor.to_owned())
}

/// The vault kind of a site's secret.
fn kind(site: &str) -> String {
    format!("widget:{site}")
}

/// Sites' signing secrets in the vault.
#[derive(Debug, Clone)]
pub struct SiteSecrets {
    store: Store,
    vault: Arc<Vault>,
}

impl SiteSecrets {
    /// Secrets on `store`, sealed with `vault`'s keys.
    pub fn new(store: Store, vault: Arc<Vault>) -> Self {
        SiteSecrets { store, vault }
    }

    /// Makes a new random secret for `site`, seals it (replacing the old one) and answers it.
    pub async fn rotate(&self, site: &str) -> anyhow::Result<Secret> {
        let mut bytes = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| anyhow::anyhow!("the system's random source failed"))?;
        let secret = Secret::new(format!(
            "wsec_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        ));
        let mut tx = self.store.begin().await?;
        self.vault
            .put(&mut tx, INSTALLATION, &kind(site), &secret)
            .await?;
        tx.commit().await?;
        Ok(secret)
    }

    /// The site's secret, if it has one.
    pub async fn get(&self, site: &str) -> anyhow::Result<Option<Secret>> {
        let mut conn = self.store.acquire().await?;
        Ok(self.vault.get(&mut conn, INSTALLATION, &kind(site)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_verifies_and_every_alteration_is_refused() {
        let s = Secret::new("wsec_test");
        let t = mint(&s, "acme", "v-1", 2_000);
        assert_eq!(verify(&s, "acme", &t, 1_000, 86_400).unwrap(), "v-1");
        assert_eq!(
            verify(&s, "other", &t, 1_000, 86_400),
            Err(TokenError::BadSignature)
        );
        let forged = t.replace("v-1", "v-2");
        assert_eq!(
            verify(&s, "acme", &forged, 1_000, 86_400),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(&Secret::new("x"), "acme", &t, 1_000, 86_400),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(&s, "acme", &t, 2_000, 86_400),
            Err(TokenError::Expired)
        );
        assert_eq!(verify(&s, "acme", &t, 1_000, 500), Err(TokenError::TooLong));
        assert_eq!(
            verify(&s, "acme", "v1.a.b", 1_000, 86_400),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn every_bad_site_setting_is_named() {
        let c = WidgetConfig {
            sites: vec![SiteConfig {
                key: "a b".into(),
                org_id: 0,
                origins: vec!["https://x.com/path".into()],
                mode: SiteMode::Public,
                collect_contact: false,
            }],
            per_ip_burst: 0,
            ..Default::default()
        };
        let p = c.problems().join("\n");
        assert!(p.contains("widget.sites[0].key \"a b\""), "{p}");
        assert!(p.contains("widget.sites[0].org_id"), "{p}");
        assert!(p.contains("\"https://x.com/path\", not an origin"), "{p}");
        assert!(p.contains("widget.per_ip_burst"), "{p}");
    }
}
