//! The widget intake's rate limits, in events: per client address and per site (governor's
//! keyed GCRA limiters), and the client's address behind trusted proxies.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::HeaderMap;
use bridge_core::widget::WidgetConfig;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Which limit refused a batch, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    pub per: &'static str,
    pub retry_after: Duration,
}

pub(crate) struct Limits {
    ip: DefaultKeyedRateLimiter<IpAddr>,
    site: DefaultKeyedRateLimiter<String>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Limits")
    }
}

fn quota(per_sec: u32, burst: u32) -> Quota {
    let n = |v: u32| NonZeroU32::new(v.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(n(per_sec)).allow_burst(n(burst))
}

impl Limits {
    pub(crate) fn new(c: &WidgetConfig) -> Self {
        Limits {
            ip: RateLimiter::keyed(quota(c.per_ip_per_sec, c.per_ip_burst)),
            site: RateLimiter::keyed(quota(c.per_site_per_sec, c.per_site_burst)),
        }
    }

    /// Takes `events` from the client's and then the site's allowance; a refused batch takes
    /// nothing from the site's.
    pub(crate) fn check(&self, ip: IpAddr, site: &str, events: usize) -> Result<(), Refused> {
        let n = NonZeroU32::new(u32::try_from(events.max(1)).unwrap_or(u32::MAX))
            .unwrap_or(NonZeroU32::MIN);
        let clock = DefaultClock::default();
        let refused = |per, wait: Option<Duration>| Refused {
            per,
            retry_after: wait
                .unwrap_or(Duration::from_secs(1))
                .max(Duration::from_secs(1)),
        };
        match self.ip.check_key_n(&ip, n) {
            Ok(Ok(())) => {}
            Ok(Err(not_until)) => {
                return Err(refused("ip", Some(not_until.wait_time_from(clock.now()))));
            }
            Err(_) => return Err(refused("ip", None)),
        }
        match self.site.check_key_n(&site.to_owned(), n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(refused("site", Some(not_until.wait_time_from(clock.now())))),
            Err(_) => Err(refused("site", None)),
        }
    }

    /// Forgets clients whose allowance is full again (bounds the memory a scan of many
    /// addresses can take).
    pub(crate) fn forget_idle(&self) {
        self.ip.retain_recent();
        self.site.retain_recent();
    }
}

/// The client's address: the peer's, or behind a trusted proxy the rightmost address of
/// `X-Forwarded-For` that is not itself a trusted proxy.
pub(crate) fn client_ip(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &[IpAddr],
) -> IpAddr {
    let peer_ip = peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.ip());
    if !trusted.contains(&peer_ip) {
        return peer_ip;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|a| !trusted.contains(a))
        .unwrap_or(peer_ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "198.51.100.7, 10.0.0.2".parse().unwrap());
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let peer = Some(SocketAddr::new(proxy, 4000));
        assert_eq!(
            client_ip(peer, &h, &[proxy]),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(peer, &h, &[]), proxy);
    }

    #[test]
    fn a_flood_from_one_address_is_refused_while_another_address_passes() {
        let l = Limits::new(&WidgetConfig {
            per_ip_per_sec: 10,
            per_ip_burst: 20,
            ..Default::default()
        });
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        assert!(l.check(a, "s", 20).is_ok());
        let r = l.check(a, "s", 5).unwrap_err();
        assert_eq!(r.per, "ip");
        assert!(r.retry_after >= Duration::from_secs(1));
        assert!(l.check(b, "s", 5).is_ok());
        // A batch larger than the burst can never pass.
        assert_eq!(l.check(b, "s", 500).unwrap_err().per, "ip");
    }
}
