//! `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP date. The one parser that the
//! Drift client and the CRM sinks share; dates go through the maintained `httpdate` crate.

use std::time::{Duration, SystemTime};

/// How long `value` asks to wait from `now`: seconds (decimals accepted, as some servers
/// send them) or an HTTP date (a date in the past means no wait). `None` for anything else.
pub fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn seconds_and_http_dates_both_parse_and_garbage_does_not() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770);
        assert_eq!(parse("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse(" 1.5 ", now), Some(Duration::from_millis(1500)));
        assert_eq!(
            parse("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        // The obsolete forms RFC 9110 still asks recipients to accept.
        assert_eq!(
            parse("Sunday, 06-Nov-94 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse(
                "Sun, 06 Nov 1994 08:49:37 GMT",
                now + Duration::from_secs(60)
            ),
            Some(Duration::ZERO)
        );
        for bad in ["", "soon", "-3", "NaN", "inf", "Sun, 06 Nov 1994"] {
            assert_eq!(parse(bad, now), None, "{bad:?}");
        }
    }
}
