//! The outbound guard: URLs that users configure (sink endpoints, CRM instance URLs) may not
//! reach loopback, private, link-local (cloud metadata included), unique-local or unspecified
//! addresses, whether named directly, through DNS, or through a redirect, unless the config's
//! allow-list names the host (tests and the demo allow the local simulators).
//!
//! [`OutboundGuard::check`] refuses a URL before anything is sent. [`OutboundGuard::client`]
//! builds the HTTP client for such URLs: its DNS resolver drops refused addresses at connect
//! time (so a name that changes what it resolves to after the check is still caught), and its
//! redirect policy refuses a hop to a forbidden address literal.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use url::Url;

/// Why a URL was refused.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// Not an http(s) URL with a host.
    #[error("{0:?} is not an http(s) URL with a host")]
    NotHttp(String),
    /// The host is or resolves to a forbidden address.
    #[error(
        "{host} {how} {addr}, a {kind} address; outbound requests may not reach it \
         (add the host to outbound.allow to permit it)"
    )]
    Forbidden {
        /// The host as written.
        host: String,
        /// "is" or "resolves to".
        how: &'static str,
        /// The address.
        addr: IpAddr,
        /// What kind of address.
        kind: &'static str,
    },
    /// The name did not resolve.
    #[error("{host} does not resolve: {source}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The guard's refusal behind a failed request (a name that resolved to a forbidden address
/// at connect time), if that is why it failed: such a failure is final, not transient.
pub fn refusal(e: &reqwest::Error) -> Option<OutboundError> {
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(x) = src {
        if let Some(OutboundError::Forbidden {
            host,
            how,
            addr,
            kind,
        }) = x.downcast_ref::<OutboundError>()
        {
            return Some(OutboundError::Forbidden {
                host: host.clone(),
                how,
                addr: *addr,
                kind,
            });
        }
        src = x.source();
    }
    None
}

/// What kind of forbidden address `ip` is, if it is one.
pub fn forbidden_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_kind(v4);
            }
            let seg = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if seg[0] & 0xfe00 == 0xfc00 {
                Some("unique-local (private)")
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if v6.is_multicast() {
                Some("multicast")
            } else {
                None
            }
        }
    }
}

fn v4_kind(v4: Ipv4Addr) -> Option<&'static str> {
    let o = v4.octets();
    if v4.is_loopback() {
        Some("loopback")
    } else if o == [169, 254, 169, 254] {
        Some("cloud metadata")
    } else if v4.is_link_local() {
        Some("link-local")
    } else if v4.is_private() {
        Some("private")
    } else if o[0] == 100 && (64..128).contains(&o[1]) {
        Some("carrier-grade NAT (private)")
    } else if v4.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if v4.is_broadcast() || v4.is_multicast() {
        Some("broadcast or multicast")
    } else {
        None
    }
}

/// The guard with its allow-list.
#[derive(Clone, Debug, Default)]
pub struct OutboundGuard {
    /// `host` or `host:port`, lower-case.
    allow: Arc<Vec<String>>,
}

impl OutboundGuard {
    /// A guard allowing the listed hosts (`host` or `host:port`).
    pub fn new(allow: &[String]) -> Self {
        OutboundGuard {
            allow: Arc::new(allow.iter().map(|a| a.trim().to_lowercase()).collect()),
        }
    }

    fn allowed(&self, host: &str, port: Option<u16>) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_lowercase();
        self.allow.iter().any(|a| {
            a == &host
                || port
                    .is_some_and(|p| *a == format!("{host}:{p}") || *a == format!("[{host}]:{p}"))
        })
    }

    /// Refuses `url` when its host is, or resolves to, a forbidden address.
    pub async fn check(&self, url: &str) -> Result<Url, OutboundError> {
        let u = Url::parse(url).map_err(|_| OutboundError::NotHttp(url.to_owned()))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(OutboundError::NotHttp(url.to_owned()));
        }
        let host = u
            .host_str()
            .ok_or_else(|| OutboundError::NotHttp(url.to_owned()))?
            .to_owned();
        let port = u.port_or_known_default();
        if self.allowed(&host, port) {
            return Ok(u);
        }
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return match forbidden_kind(ip) {
                Some(kind) => Err(OutboundError::Forbidden {
                    host,
                    how: "is",
                    addr: ip,
                    kind,
                }),
                None => Ok(u),
            };
        }
        let addrs = tokio::net::lookup_host((bare.as_str(), port.unwrap_or(443)))
            .await
            .map_err(|source| OutboundError::Resolve {
                host: host.clone(),
                source,
            })?;
        for a in addrs {
            if let Some(kind) = forbidden_kind(a.ip()) {
                return Err(OutboundError::Forbidden {
                    host,
                    how: "resolves to",
                    addr: a.ip(),
                    kind,
                });
            }
        }
        Ok(u)
    }

    /// [`check`](Self::check) for a URL configured at start-up: a host that does not resolve
    /// *now* is accepted with a warning instead of refused, so one CRM's DNS outage cannot
    /// keep `serve` (and webhook intake) down. Nothing forbidden gets through: the guarded
    /// client checks every address again when it connects, and until the name resolves each
    /// delivery fails as a retry.
    pub async fn check_configured(&self, url: &str) -> Result<Url, OutboundError> {
        match self.check(url).await {
            Err(OutboundError::Resolve { host, source }) => {
                tracing::warn!(host = %host, error = %source,
                    "a configured host does not resolve now; its deliveries will retry until it does");
                Url::parse(url).map_err(|_| OutboundError::NotHttp(url.to_owned()))
            }
            other => other,
        }
    }

    /// An HTTP client whose every connection passes the guard; with `follow_redirects`, at
    /// most 5 redirects are followed and each hop passes it too, else none is followed.
    pub fn client(
        &self,
        builder: reqwest::ClientBuilder,
        follow_redirects: bool,
    ) -> reqwest::Result<reqwest::Client> {
        drift_client::install_crypto();
        let builder = builder.dns_resolver(Arc::new(GuardedResolver(self.clone())));
        if !follow_redirects {
            return builder.redirect(reqwest::redirect::Policy::none()).build();
        }
        let me = self.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                return attempt.error("more than 5 redirects");
            }
            let u = attempt.url();
            let host = u.host_str().unwrap_or_default().to_owned();
            if !me.allowed(&host, u.port_or_known_default())
                && let Ok(ip) = host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                && let Some(kind) = forbidden_kind(ip)
            {
                let e = OutboundError::Forbidden {
                    host,
                    how: "is",
                    addr: ip,
                    kind,
                };
                return attempt.error(e);
            }
            attempt.follow()
        });
        builder.redirect(policy).build()
    }
}

/// Resolves names and drops the forbidden addresses (all of them: then the connection fails).
struct GuardedResolver(OutboundGuard);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if guard.allowed(&host, None) {
                return Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs);
            }
            if let Some(bad) = addrs.iter().find(|a| forbidden_kind(a.ip()).is_some()) {
                let e = OutboundError::Forbidden {
                    host,
                    how: "resolves to",
                    addr: bad.ip(),
                    kind: forbidden_kind(bad.ip()).unwrap_or("forbidden"),
                };
                return Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn loopback_private_link_local_metadata_and_unique_local_targets_are_refused() {
        let g = OutboundGuard::default();
        for url in [
            "http://127.0.0.1/hook",
            "http://10.0.0.8/",
            "http://10.255.255.255/",
            "http://172.16.0.1/",
            "http://172.31.255.1/",
            "http://192.168.1.20:8080/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/",
            "http://[fc00::1]/",
            "http://[fd12:3456::1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://0.0.0.0/",
            // a name that resolves to loopback
            "http://localhost:9/",
        ] {
            let e = g.check(url).await.unwrap_err();
            assert!(matches!(e, OutboundError::Forbidden { .. }), "{url}: {e}");
            assert!(e.to_string().contains("outbound.allow"), "{e}");
        }
        for url in [
            "https://93.184.216.34/",
            "http://172.32.0.1/",
            "https://[2606:4700::1]/",
        ] {
            assert!(g.check(url).await.is_ok(), "{url}");
        }
        assert!(matches!(
            g.check("ftp://example.com/").await,
            Err(OutboundError::NotHttp(_))
        ));
        assert!(
            OutboundGuard::new(&["localhost".into()])
                .check("http://localhost:9/")
                .await
                .is_ok()
        );
    }

    /// Serves one HTTP answer per connection: a redirect to `location`.
    async fn redirector(location: &'static str) -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = s.write_all(resp.as_bytes()).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_redirect_to_a_forbidden_address_or_name_is_refused() {
        for target in [
            "http://169.254.169.254/latest/meta-data/",
            "http://localhost:9/x",
        ] {
            let addr = redirector(target).await;
            // The redirector itself is on loopback, so the test allows exactly its port.
            let g = OutboundGuard::new(&[format!("127.0.0.1:{}", addr.port())]);
            let url = format!("http://127.0.0.1:{}/hook", addr.port());
            g.check(&url).await.unwrap();
            let client = g.client(reqwest::Client::builder(), true).unwrap();
            let e = client.get(&url).send().await.unwrap_err();
            let chain = {
                let mut s = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(x) = src {
                    s.push_str(&format!(": {x}"));
                    src = x.source();
                }
                s
            };
            assert!(
                chain.contains("outbound requests may not reach it"),
                "{target}: {chain}"
            );
        }
    }
}
