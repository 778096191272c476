//! Identifier newtypes, epoch-millisecond timestamps and the redacting [`Secret`].
//!
//! Drift ids are int64 on the wire. Some integrations have seen them as numeric strings
//! (for example `relatedPlaybookId`), so every id also accepts a string of digits.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! int_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub i64);

        impl $name {
            /// The raw int64 value.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl From<i64> for $name {
            fn from(v: i64) -> Self {
                Self(v)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.trim().parse().map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_i64(self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_i64(d).map(Self)
            }
        }
    };
}

int_id!(
    /// A Drift organisation (workspace) id.
    OrgId
);
int_id!(
    /// A conversation id.
    ConversationId
);
int_id!(
    /// A message id.
    MessageId
);
int_id!(
    /// A contact (end user) id.
    ContactId
);
int_id!(
    /// A Drift user (agent or bot) id.
    UserId
);
int_id!(
    /// An inbox id.
    InboxId
);
int_id!(
    /// A playbook id.
    PlaybookId
);

/// Epoch milliseconds, the only timestamp format Drift uses.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EpochMillis(pub i64);

impl EpochMillis {
    /// Milliseconds since the Unix epoch.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// Midnight UTC of a proleptic Gregorian date (`month` 1-12), by Hinnant's
    /// days-from-civil algorithm.
    pub const fn from_date(year: i64, month: i64, day: i64) -> Self {
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
        let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
        Self(days * 86_400_000)
    }

    /// The UTC civil date and time of day: (year, month 1-12, day, hour, minute, second,
    /// millisecond), by Hinnant's civil-from-days algorithm.
    pub const fn civil(self) -> (i64, u32, u32, u32, u32, u32, u32) {
        let secs = self.0.div_euclid(1000);
        let z = secs.div_euclid(86_400) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
        let sod = secs.rem_euclid(86_400);
        (
            y,
            m,
            d,
            (sod / 3600) as u32,
            ((sod % 3600) / 60) as u32,
            (sod % 60) as u32,
            self.0.rem_euclid(1000) as u32,
        )
    }

    /// ISO 8601 in UTC with milliseconds: `2026-01-01T09:30:00.000Z`.
    pub fn to_iso8601(self) -> String {
        let (y, mo, d, h, mi, s, ms) = self.civil();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
    }

    /// The UTC date: `2026-01-01`.
    pub fn to_date(self) -> String {
        let (y, mo, d, ..) = self.civil();
        format!("{y:04}-{mo:02}-{d:02}")
    }

    /// The current wall-clock time.
    pub fn now() -> Self {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Self(ms)
    }
}

impl fmt::Debug for EpochMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

impl fmt::Display for EpochMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for EpochMillis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for EpochMillis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_i64(d).map(Self)
    }
}

/// Accepts an integer, an integral float, or a string of digits.
fn deserialize_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an int64 or a string of digits")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom(format!("{v} does not fit in int64")))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
            if v.fract() == 0.0 && v.abs() < 9.0e18 {
                Ok(v as i64)
            } else {
                Err(E::custom(format!("{v} is not an integral id")))
            }
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<i64, E> {
            v.trim()
                .parse()
                .map_err(|_| E::custom(format!("{v:?} is not a numeric id")))
        }
    }
    d.deserialize_any(V)
}

/// A secret string (access token, refresh token, client secret, verification token).
///
/// `Debug` and `Display` print `[redacted]`; read the value with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; use only where it is sent or compared.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no secret is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<&str> for Secret {
    fn from(v: &str) -> Self {
        Self(v.to_owned())
    }
}

impl From<String> for Secret {
    fn from(v: String) -> Self {
        Self(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_numbers_and_numeric_strings_and_reject_words() {
        let a: PlaybookId = serde_json::from_str("2310900").unwrap();
        let b: PlaybookId = serde_json::from_str("\"2310900\"").unwrap();
        assert_eq!(a, b);
        assert!(serde_json::from_str::<PlaybookId>("\"abc\"").is_err());
        let big: ContactId = serde_json::from_str("11751623441268736").unwrap();
        assert_eq!(big.get(), 11_751_623_441_268_736);
    }

    #[test]
    fn dates_convert_to_epoch_millis() {
        assert_eq!(EpochMillis::from_date(1970, 1, 2).get(), 86_400_000);
        assert_eq!(EpochMillis::from_date(2026, 1, 1).get(), 1_767_225_600_000);
        assert_eq!(EpochMillis::from_date(2000, 3, 1).get(), 951_868_800_000);
        assert_eq!(
            EpochMillis(1_767_225_600_000 + 34_200_123).to_iso8601(),
            "2026-01-01T09:30:00.123Z"
        );
        assert_eq!(EpochMillis(951_868_800_000 - 1).to_date(), "2000-02-29");
        for days in [-800_000i64, -1, 0, 59, 10_957, 20_000, 400_000] {
            let (y, m, d, ..) = EpochMillis(days * 86_400_000).civil();
            assert_eq!(
                EpochMillis::from_date(y, i64::from(m), i64::from(d)).get(),
                days * 86_400_000
            );
        }
    }

    #[test]
    fn secrets_never_print_their_value() {
        let s = Secret::new("EM00VfyJofNgMqeWMpUWDeW4qjFMZr");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "EM00VfyJofNgMqeWMpUWDeW4qjFMZr");
    }
}
