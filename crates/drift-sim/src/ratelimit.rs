//! Per-access-token rate limiting (drift-api.md §9, §15): a leaky bucket (GCRA) holding at
//! most `burst` requests that drains at `per_minute / 60` per second. With the default burst
//! equal to the limit this is "N requests per rolling minute": a client that has been quiet
//! may send a minute's worth at once, and then one request per emission interval.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Limit settings; `per_minute == 0` turns limiting off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Sustained requests per minute per token.
    pub per_minute: u32,
    /// Bucket size; `None` means one minute's worth.
    pub burst: Option<u32>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_minute: 600,
            burst: None,
        }
    }
}

/// The verdict for one request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// `X-RateLimit-Limit` (per minute).
    pub limit: u32,
    /// `X-RateLimit-Remaining` after this request.
    pub remaining: u32,
    /// `X-RateLimit-Reset`: seconds until the bucket is empty again.
    pub reset_secs: u64,
    /// `Retry-After` for a refused request.
    pub retry_after: Duration,
}

/// GCRA state per token.
#[derive(Debug, Default)]
pub struct RateLimiter {
    config: RateLimitConfig,
    /// Theoretical arrival time per token.
    tat: HashMap<String, Instant>,
}

impl RateLimiter {
    /// A limiter with `config`.
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            config,
            tat: HashMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> RateLimitConfig {
        self.config
    }

    /// Replaces the settings and forgets every bucket.
    pub fn set_config(&mut self, config: RateLimitConfig) {
        self.config = config;
        self.tat.clear();
    }

    /// Accounts one request of `token` at `now`; `None` when limiting is off.
    pub fn check(&mut self, token: &str, now: Instant) -> Option<Decision> {
        let per_minute = self.config.per_minute;
        if per_minute == 0 {
            return None;
        }
        let burst = self.config.burst.unwrap_or(per_minute).max(1);
        let t = Duration::from_secs_f64(60.0 / f64::from(per_minute));
        let capacity = t * burst;
        let tat = self.tat.get(token).copied().unwrap_or(now).max(now);
        let new_tat = tat + t;
        let level = new_tat - now;
        let remaining_of = |level: Duration| {
            // The epsilon keeps float rounding from under-counting by one.
            (capacity.saturating_sub(level).as_secs_f64() / t.as_secs_f64() + 1e-6).floor() as u32
        };
        if level > capacity {
            let backlog = tat - now;
            return Some(Decision {
                allowed: false,
                limit: per_minute,
                remaining: 0,
                reset_secs: backlog.as_secs_f64().ceil() as u64,
                retry_after: level - capacity,
            });
        }
        self.tat.insert(token.to_owned(), new_tat);
        Some(Decision {
            allowed: true,
            limit: per_minute,
            remaining: remaining_of(level),
            reset_secs: level.as_secs_f64().ceil() as u64,
            retry_after: Duration::ZERO,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_refuses_until_one_interval_drains() {
        let mut l = RateLimiter::new(RateLimitConfig {
            per_minute: 60,
            burst: Some(3),
        });
        let t0 = Instant::now();
        let d: Vec<bool> = (0..4).map(|_| l.check("a", t0).unwrap().allowed).collect();
        assert_eq!(d, [true, true, true, false]);
        let refused = l.check("a", t0).unwrap();
        assert!(refused.retry_after > Duration::from_millis(900));
        assert!(l.check("b", t0).unwrap().allowed, "buckets are per token");
        assert!(l.check("a", t0 + Duration::from_secs(1)).unwrap().allowed);
        assert!(!l.check("a", t0 + Duration::from_secs(1)).unwrap().allowed);
    }

    #[test]
    fn remaining_counts_down_and_zero_limit_is_off() {
        let mut l = RateLimiter::new(RateLimitConfig {
            per_minute: 600,
            burst: None,
        });
        let now = Instant::now();
        assert_eq!(l.check("t", now).unwrap().remaining, 599);
        assert_eq!(l.check("t", now).unwrap().remaining, 598);
        let mut off = RateLimiter::new(RateLimitConfig {
            per_minute: 0,
            burst: None,
        });
        assert!(off.check("t", now).is_none());
    }
}
