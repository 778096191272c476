//! Console sign-in: the admin or viewer token is exchanged once for a signed session cookie
//! (HttpOnly, SameSite=Strict, Secure behind HTTPS), which carries the role, an expiry, a
//! random session id and the name the operator gave for the audit. Every state-changing form
//! carries a CSRF token derived from the session id, checked in constant time.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::{HeaderMap, header};
use cookie::{Cookie, CookieJar, Key, SameSite};
use parking_lot::Mutex;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "driftbridge_console";
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// How long a one-time sign-in link is valid.
pub const LINK_TTL: Duration = Duration::from_secs(15 * 60);

/// What a session may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Reads, with personal data masked; no action.
    Viewer,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

/// A signed-in operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The role.
    pub role: Role,
    /// Random id (hex), unique per sign-in.
    pub id: String,
    /// The name given at sign-in (may be empty).
    pub name: String,
    /// Ends at (epoch ms).
    pub expires_at: i64,
}

impl Session {
    /// Who acted, for the audit: the name, the role and the session's first characters;
    /// never a token.
    pub fn actor(&self) -> String {
        let short = &self.id[..8.min(self.id.len())];
        if self.name.is_empty() {
            format!("{} (session {short})", self.role.as_str())
        } else {
            format!("{} ({}, session {short})", self.name, self.role.as_str())
        }
    }
}

/// The console's keys and pending one-time links.
#[derive(Debug)]
pub struct Sessions {
    cookie_key: Key,
    csrf_key: hmac::Key,
    links: Mutex<HashMap<String, (Role, i64)>>,
}

fn random_hex(n: usize) -> String {
    let mut raw = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut raw)
        .expect("the system's random source works");
    hex::encode(raw)
}

/// Keeps a name printable and short: it is shown on pages and written to the audit.
fn clean_name(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control())
        .take(40)
        .collect::<String>()
        .trim()
        .to_owned()
}

impl Sessions {
    /// Keys derived from `secret` (32 bytes derived from the master key).
    pub fn new(secret: &[u8; 32]) -> Self {
        Sessions {
            cookie_key: Key::derive_from(secret),
            csrf_key: hmac::Key::new(hmac::HMAC_SHA256, &[secret.as_slice(), b"csrf"].concat()),
            links: Mutex::default(),
        }
    }

    /// A new session's `Set-Cookie` value.
    pub fn start(&self, role: Role, name: &str, secure: bool, now_ms: i64) -> (Session, String) {
        let s = Session {
            role,
            id: random_hex(16),
            name: clean_name(name),
            expires_at: now_ms + SESSION_TTL.as_millis() as i64,
        };
        let value = format!("{}|{}|{}|{}", role.as_str(), s.expires_at, s.id, s.name);
        let mut jar = CookieJar::new();
        jar.signed_mut(&self.cookie_key).add(
            Cookie::build((COOKIE, value))
                .path("/admin")
                .http_only(true)
                .same_site(SameSite::Strict)
                .secure(secure)
                .max_age(cookie::time::Duration::seconds(SESSION_TTL.as_secs() as i64))
                .build(),
        );
        let set = jar
            .get(COOKIE)
            .map(|c| c.encoded().to_string())
            .unwrap_or_default();
        (s, set)
    }

    /// The `Set-Cookie` value that ends a session.
    pub fn end(&self, secure: bool) -> String {
        Cookie::build((COOKIE, ""))
            .path("/admin")
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(secure)
            .max_age(cookie::time::Duration::ZERO)
            .build()
            .encoded()
            .to_string()
    }

    /// The session the request's cookie proves, if any and not expired.
    pub fn from_headers(&self, headers: &HeaderMap, now_ms: i64) -> Option<Session> {
        let mut jar = CookieJar::new();
        for h in headers.get_all(header::COOKIE) {
            let Ok(h) = h.to_str() else { continue };
            for c in Cookie::split_parse_encoded(h.to_owned()).flatten() {
                if c.name() == COOKIE {
                    jar.add_original(c.into_owned());
                }
            }
        }
        let c = jar.signed(&self.cookie_key).get(COOKIE)?;
        let mut parts = c.value().splitn(4, '|');
        let role = match parts.next()? {
            "admin" => Role::Admin,
            "viewer" => Role::Viewer,
            _ => return None,
        };
        let expires_at: i64 = parts.next()?.parse().ok()?;
        let id = parts.next()?.to_owned();
        let name = parts.next().unwrap_or_default().to_owned();
        (expires_at > now_ms).then_some(Session {
            role,
            id,
            name,
            expires_at,
        })
    }

    /// The CSRF token of a session (what its forms carry).
    pub fn csrf(&self, s: &Session) -> String {
        hex::encode(&hmac::sign(&self.csrf_key, s.id.as_bytes()).as_ref()[..16])
    }

    /// Whether `presented` is the session's CSRF token.
    pub fn csrf_ok(&self, s: &Session, presented: &str) -> bool {
        bool::from(self.csrf(s).as_bytes().ct_eq(presented.as_bytes()))
    }

    /// A one-time sign-in code for `role`, valid for [`LINK_TTL`].
    pub fn link(&self, role: Role, now_ms: i64) -> String {
        let code = random_hex(24);
        let mut links = self.links.lock();
        links.retain(|_, (_, until)| *until > now_ms);
        links.insert(code.clone(), (role, now_ms + LINK_TTL.as_millis() as i64));
        code
    }

    /// Spends a one-time code: its role, once, if it has not expired.
    pub fn redeem(&self, code: &str, now_ms: i64) -> Option<Role> {
        let (role, until) = self.links.lock().remove(code)?;
        (until > now_ms).then_some(role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(set_cookie: &str) -> HeaderMap {
        let pair = set_cookie.split(';').next().unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, format!("other=1; {pair}").parse().unwrap());
        h
    }

    #[test]
    fn a_session_round_trips_and_a_forged_or_expired_one_does_not() {
        let s = Sessions::new(&[7; 32]);
        let (session, set) = s.start(Role::Viewer, "Ana\u{7}|x", false, 1_000);
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        assert!(!set.contains("Secure"));
        let back = s.from_headers(&headers(&set), 2_000).expect("valid");
        assert_eq!(back, session);
        assert_eq!(back.name, "Ana|x");
        assert!(s.from_headers(&headers(&set), session.expires_at).is_none());
        // Another key (another master key) does not accept it.
        assert!(
            Sessions::new(&[8; 32])
                .from_headers(&headers(&set), 2_000)
                .is_none()
        );
        // Changing the role in the cookie breaks the signature.
        let forged = set.replacen("viewer", "admin", 1);
        assert!(s.from_headers(&headers(&forged), 2_000).is_none());
        assert!(s.start(Role::Admin, "", true, 0).1.contains("Secure"));
    }

    #[test]
    fn csrf_tokens_belong_to_their_session_and_links_work_once() {
        let s = Sessions::new(&[7; 32]);
        let (a, _) = s.start(Role::Admin, "", false, 0);
        let (b, _) = s.start(Role::Admin, "", false, 0);
        assert!(s.csrf_ok(&a, &s.csrf(&a)));
        assert!(!s.csrf_ok(&a, &s.csrf(&b)));
        assert!(!s.csrf_ok(&a, ""));
        let code = s.link(Role::Admin, 0);
        assert_eq!(s.redeem(&code, 1), Some(Role::Admin));
        assert_eq!(s.redeem(&code, 1), None, "used once");
        let late = s.link(Role::Viewer, 0);
        assert_eq!(s.redeem(&late, LINK_TTL.as_millis() as i64 + 1), None);
    }
}
