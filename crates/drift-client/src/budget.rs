//! The per-token request budget: a client-side GCRA that paces requests so a well-behaved run
//! never sees a 429, corrected by what Drift's rate-limit headers say.
//!
//! The budget allows `burst` requests at once and then one per `60 s / per_minute`. Each
//! response's `X-RateLimit-Limit` (or Kong's `-Minute` or the IETF `RateLimit-*` names) can
//! only make it stricter: a lower server limit slows the pace, and a low `Remaining` shrinks
//! the burst still available. A 429 pauses every caller until `Retry-After` has passed.

use parking_lot::Mutex;
use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::clock::Clock;

/// Budget settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateBudget {
    /// Requests per minute; 0 turns pacing off.
    pub per_minute: u32,
    /// Requests that may go at once; `None` means one second's worth.
    pub burst: Option<u32>,
}

impl Default for RateBudget {
    /// Drift's commonly cited limit, 600 requests per minute (drift-api.md §9).
    fn default() -> Self {
        Self {
            per_minute: 600,
            burst: None,
        }
    }
}

#[derive(Debug)]
struct State {
    interval: Duration,
    burst: u32,
    /// Theoretical arrival time of the next request, on the clock's timeline.
    tat: Duration,
    paused_until: Duration,
    in_flight: u32,
}

/// A shared request budget.
#[derive(Debug)]
pub struct Budget {
    state: Option<Mutex<State>>,
}

fn header_u64(h: &HeaderMap, names: &[&str]) -> Option<u64> {
    names
        .iter()
        .find_map(|n| h.get(*n)?.to_str().ok()?.trim().parse().ok())
}

impl Budget {
    /// A budget for `cfg`.
    pub fn new(cfg: RateBudget) -> Self {
        if cfg.per_minute == 0 {
            return Self { state: None };
        }
        let burst = cfg
            .burst
            .unwrap_or_else(|| cfg.per_minute.div_ceil(60))
            .max(1);
        Self {
            state: Some(Mutex::new(State {
                interval: Duration::from_secs_f64(60.0 / f64::from(cfg.per_minute)),
                burst,
                tat: Duration::ZERO,
                paused_until: Duration::ZERO,
                in_flight: 0,
            })),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> Option<R> {
        self.state.as_ref().map(|m| f(&mut m.lock()))
    }

    /// Waits until one more request may be sent, and accounts it.
    pub async fn acquire(&self, clock: &dyn Clock) {
        // An unbounded wait always ends in room.
        let _ = self.acquire_within(clock, None).await;
    }

    /// [`Budget::acquire`], but gives up without accounting anything once it would have
    /// waited longer than `max` in all (waiters race for each freed slot, so one wait is
    /// never longer than an interval while the sum can be). Answers when to come back: when
    /// half a burst has refilled, so a job's few calls then go through. (A job worker uses it
    /// to give its slot back instead of sleeping on one token's budget.)
    pub async fn acquire_within(
        &self,
        clock: &dyn Clock,
        max: Option<Duration>,
    ) -> Result<(), Duration> {
        let started = clock.now();
        loop {
            let now = clock.now();
            let wait = self.with(|s| {
                if s.paused_until > now {
                    return Some((s.paused_until - now, s.paused_until - now));
                }
                let tat = s.tat.max(now);
                let level = tat + s.interval - now;
                let capacity = s.interval * s.burst;
                if level <= capacity {
                    s.tat = tat + s.interval;
                    s.in_flight += 1;
                    None
                } else {
                    let wait = level - capacity;
                    Some((wait, wait + s.interval * s.burst.div_ceil(2)))
                }
            });
            match wait.flatten() {
                None => return Ok(()),
                Some((d, back)) if max.is_some_and(|m| now - started + d > m) => {
                    return Err(back);
                }
                Some((d, _)) => clock.sleep(d).await,
            }
        }
    }

    /// Accounts a finished request and learns from its rate-limit headers.
    pub fn observe(&self, clock: &dyn Clock, headers: &HeaderMap) {
        let now = clock.now();
        self.with(|s| {
            s.in_flight = s.in_flight.saturating_sub(1);
            let limit = header_u64(
                headers,
                &[
                    "x-ratelimit-limit",
                    "x-ratelimit-limit-minute",
                    "ratelimit-limit",
                ],
            );
            if let Some(limit) = limit.filter(|l| *l > 0) {
                let server = Duration::from_secs_f64(60.0 / limit as f64);
                if server > s.interval {
                    s.interval = server;
                }
            }
            let remaining = header_u64(
                headers,
                &[
                    "x-ratelimit-remaining",
                    "x-ratelimit-remaining-minute",
                    "ratelimit-remaining",
                ],
            );
            if let Some(r) = remaining {
                // Others in flight may not have been counted by the server yet.
                let available = (r as u32).saturating_sub(s.in_flight).min(s.burst);
                let floor = now + s.interval * (s.burst - available);
                if floor > s.tat {
                    s.tat = floor;
                }
            }
        });
    }

    /// Requests that may be sent right now without waiting (`None` when unlimited): 0 while
    /// paused after a 429.
    pub fn room(&self, clock: &dyn Clock) -> Option<u32> {
        let now = clock.now();
        self.with(|s| {
            if s.paused_until > now {
                return 0;
            }
            let used = s.tat.max(now) - now;
            let free = (s.interval * s.burst).saturating_sub(used);
            (free.as_nanos() / s.interval.as_nanos().max(1)) as u32
        })
    }

    /// Accounts a request that failed without an answer.
    pub fn release(&self) {
        self.with(|s| s.in_flight = s.in_flight.saturating_sub(1));
    }

    /// Pauses every caller for `d` (after a 429).
    pub fn pause(&self, clock: &dyn Clock, d: Duration) {
        let until = clock.now() + d;
        self.with(|s| {
            s.in_flight = s.in_flight.saturating_sub(1);
            if until > s.paused_until {
                s.paused_until = until;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn room_counts_down_with_each_request_and_is_zero_while_paused() {
        let clock = crate::clock::ManualClock::default();
        let b = Budget::new(RateBudget {
            per_minute: 60,
            burst: Some(3),
        });
        assert_eq!(b.room(&clock), Some(3));
        b.acquire(&clock).await;
        b.acquire(&clock).await;
        assert_eq!(b.room(&clock), Some(1));
        clock.advance(Duration::from_secs(1));
        assert_eq!(b.room(&clock), Some(2));
        b.pause(&clock, Duration::from_secs(5));
        assert_eq!(b.room(&clock), Some(0));
        assert_eq!(
            Budget::new(RateBudget {
                per_minute: 0,
                burst: None
            })
            .room(&clock),
            None
        );
    }
    use crate::clock::ManualClock;

    #[tokio::test]
    async fn paces_after_the_burst_at_the_configured_rate() {
        let clock = ManualClock::default();
        let b = Budget::new(RateBudget {
            per_minute: 60,
            burst: Some(2),
        });
        for _ in 0..5 {
            b.acquire(&clock).await;
            b.release();
        }
        // 2 at once, then 3 more at one per second.
        assert_eq!(clock.now(), Duration::from_secs(3));
    }

    #[tokio::test]
    async fn a_bounded_acquire_waits_a_short_while_and_gives_up_on_a_long_one_without_spending() {
        let clock = ManualClock::default();
        let b = Budget::new(RateBudget {
            per_minute: 60,
            burst: Some(1),
        });
        let max = Some(Duration::from_millis(1500));
        assert_eq!(b.acquire_within(&clock, max).await, Ok(()));
        // The next slot is a second away: within the bound, so it waits.
        assert_eq!(b.acquire_within(&clock, max).await, Ok(()));
        assert_eq!(clock.now(), Duration::from_secs(1));
        // The next is a second away, over this bound: refused, to come back when the wait
        // and half a burst (one call) have passed ...
        let short = Some(Duration::from_millis(500));
        assert_eq!(
            b.acquire_within(&clock, short).await,
            Err(Duration::from_secs(2))
        );
        // ... and spent nothing: the next unbounded acquire is one interval later, not two.
        b.acquire(&clock).await;
        assert_eq!(clock.now(), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_lower_server_limit_and_low_remaining_slow_the_budget() {
        let clock = ManualClock::default();
        let b = Budget::new(RateBudget {
            per_minute: 6000,
            burst: Some(100),
        });
        b.acquire(&clock).await;
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-limit", "60".parse().unwrap());
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        b.observe(&clock, &h);
        // The server drains one request per second and has no room now.
        b.acquire(&clock).await;
        assert_eq!(clock.now(), Duration::from_secs(1));
        b.acquire(&clock).await;
        assert_eq!(
            clock.now(),
            Duration::from_secs(2),
            "paced at the server's 60/min"
        );
    }

    #[tokio::test]
    async fn a_pause_holds_every_caller() {
        let clock = ManualClock::default();
        let b = Budget::new(RateBudget {
            per_minute: 0,
            burst: None,
        });
        b.acquire(&clock).await; // off: never waits
        let b = Budget::new(RateBudget::default());
        b.acquire(&clock).await;
        b.pause(&clock, Duration::from_secs(2));
        b.acquire(&clock).await;
        assert!(clock.now() >= Duration::from_secs(2));
    }
}
