//! Fault injection per route: injected latency, 5xx errors, 429s, connection resets and
//! timeouts, chosen at random by rate or forced for the next N requests.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// What a matching rule does to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer with this 5xx status.
    Error(u16),
    /// Answer 429 with `Retry-After`.
    RateLimited(u64),
    /// Drop the connection without an answer.
    Reset,
    /// Hold the request for the rule's timeout, then give up on it.
    Timeout(Duration),
}

/// One rule. A rule matches when its method and path prefix (if given) match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// HTTP method to match; any when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// Path prefix to match, e.g. `/conversations`; any when absent.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Fraction of requests answered with a 5xx.
    #[serde(default)]
    pub error_rate: f64,
    /// Status for injected errors (default 503).
    #[serde(default)]
    pub error_status: Option<u16>,
    /// Fraction of requests answered 429.
    #[serde(default)]
    pub rate_limit_rate: f64,
    /// `Retry-After` of injected 429s, in seconds (default 1).
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
    /// Fraction of connections dropped.
    #[serde(default)]
    pub reset_rate: f64,
    /// Fraction of requests held until the client times out.
    #[serde(default)]
    pub timeout_rate: f64,
    /// How long a timed-out request is held, in ms (default 30,000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Latency added to every matching request, in ms.
    #[serde(default)]
    pub latency_ms: u64,
    /// Apply the rule's first non-zero fault to exactly the next N matching requests
    /// (deterministic), then retire the rule.
    #[serde(default)]
    pub next: Option<u32>,
}

impl FaultRule {
    fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
    }

    fn actions(&self) -> [(f64, FaultAction); 4] {
        [
            (
                self.error_rate,
                FaultAction::Error(self.error_status.unwrap_or(503)),
            ),
            (
                self.rate_limit_rate,
                FaultAction::RateLimited(self.retry_after_secs.unwrap_or(1)),
            ),
            (self.reset_rate, FaultAction::Reset),
            (
                self.timeout_rate,
                FaultAction::Timeout(Duration::from_millis(self.timeout_ms.unwrap_or(30_000))),
            ),
        ]
    }
}

/// The active rules; the first matching rule decides.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Vec<FaultRule>,
    /// Faults injected so far.
    pub injected: u64,
}

impl Faults {
    /// Replaces the rules.
    pub fn set(&mut self, rules: Vec<FaultRule>) {
        self.rules = rules;
    }

    /// The rules.
    pub fn rules(&self) -> &[FaultRule] {
        &self.rules
    }

    /// Decides for one request: added latency and an optional fault.
    pub fn decide(
        &mut self,
        method: &str,
        path: &str,
        rng: &mut Rng,
    ) -> (Duration, Option<FaultAction>) {
        let Some(idx) = self.rules.iter().position(|r| r.matches(method, path)) else {
            return (Duration::ZERO, None);
        };
        let rule = &mut self.rules[idx];
        let latency = Duration::from_millis(rule.latency_ms);
        let action = if let Some(n) = rule.next {
            let action = rule
                .actions()
                .into_iter()
                .find(|(rate, _)| *rate > 0.0)
                .map(|(_, a)| a);
            if n <= 1 {
                self.rules.remove(idx);
            } else {
                rule.next = Some(n - 1);
            }
            action
        } else {
            let roll = rng.unit();
            let mut acc = 0.0;
            rule.actions().into_iter().find_map(|(rate, a)| {
                acc += rate;
                (roll < acc).then_some(a)
            })
        };
        if action.is_some() {
            self.injected += 1;
        }
        (latency, action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forced_rules_fire_exactly_n_times_then_retire() {
        let mut f = Faults::default();
        f.set(vec![FaultRule {
            path_prefix: Some("/conversations".into()),
            rate_limit_rate: 1.0,
            retry_after_secs: Some(2),
            next: Some(2),
            ..FaultRule::default()
        }]);
        let mut rng = Rng::new(1);
        assert_eq!(f.decide("GET", "/users/list", &mut rng).1, None);
        let a = f.decide("GET", "/conversations/1", &mut rng).1;
        assert_eq!(a, Some(FaultAction::RateLimited(2)));
        assert!(f.decide("GET", "/conversations/1", &mut rng).1.is_some());
        assert_eq!(f.decide("GET", "/conversations/1", &mut rng).1, None);
        assert_eq!(f.injected, 2);
    }

    #[test]
    fn random_rates_inject_roughly_that_fraction() {
        let mut f = Faults::default();
        f.set(vec![FaultRule {
            error_rate: 0.1,
            ..FaultRule::default()
        }]);
        let mut rng = Rng::new(7);
        let n = (0..10_000)
            .filter(|_| f.decide("GET", "/x", &mut rng).1.is_some())
            .count();
        assert!((800..1200).contains(&n), "{n}");
    }
}
