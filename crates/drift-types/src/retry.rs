//! When to try again: `Retry-After` (RFC 9110 §10.2.3, delay-seconds or an HTTP date, parsed
//! by the maintained `httpdate` crate) and the one capped exponential backoff with jitter
//! (`fastrand`) that the Drift client and the job queue share.

use std::time::{Duration, SystemTime};

/// How long `value` asks to wait from `now`: seconds (decimals accepted, as some servers
/// send them) or an HTTP date (a date in the past means no wait). `None` for anything else.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        // `try_from`: a value past Duration's range (about 1.8e19 s) is garbage, not a panic.
        return (secs >= 0.0)
            .then(|| Duration::try_from_secs_f64(secs).ok())
            .flatten();
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(now).unwrap_or_default())
}

/// Capped exponential backoff with jitter: a uniformly random point in the upper half of
/// `min(base * 2^exponent, cap)`, so retries spread out but never come back sooner than half
/// the step.
pub fn backoff(base: Duration, cap: Duration, exponent: u32) -> Duration {
    let step = base.saturating_mul(1u32 << exponent.min(20)).min(cap);
    step / 2 + jitter(step / 2)
}

/// A uniformly random duration in `[0, max)`.
pub fn jitter(max: Duration) -> Duration {
    max.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn seconds_and_http_dates_both_parse_and_garbage_does_not() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770);
        assert_eq!(retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(" 1.5 ", now), Some(Duration::from_millis(1500)));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        // The obsolete forms RFC 9110 still asks recipients to accept.
        assert_eq!(
            retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(
                "Sun, 06 Nov 1994 08:49:37 GMT",
                now + Duration::from_secs(60)
            ),
            Some(Duration::ZERO)
        );
        for bad in [
            "",
            "soon",
            "-3",
            "NaN",
            "inf",
            "1e400",
            "1e20",
            "Sun, 06 Nov 1994",
        ] {
            assert_eq!(retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn backoff_stays_in_the_upper_half_of_its_capped_step() {
        let (base, cap) = (Duration::from_millis(100), Duration::from_secs(2));
        for _ in 0..200 {
            let d = backoff(base, cap, 2);
            assert!(
                d >= Duration::from_millis(200) && d < Duration::from_millis(400),
                "{d:?}"
            );
            let d = backoff(base, cap, 30);
            assert!(
                d >= Duration::from_secs(1) && d < Duration::from_secs(2),
                "{d:?}"
            );
        }
        let spread: std::collections::BTreeSet<Duration> =
            (0..50).map(|_| backoff(base, cap, 4)).collect();
        assert!(spread.len() > 1, "jitter varies");
    }
}
