//! Leniency at the edges: small enums that keep values they do not know as raw strings
//! instead of failing, and JSON text whose lone surrogate escapes are repaired instead of
//! refused.

/// Defines a string enum with known variants plus `Other(String)`.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this version does not know, kept verbatim.
            Other(String),
        }

        impl $name {
            /// The wire spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Other(s) => s,
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $(if s.eq_ignore_ascii_case($wire) { return Self::$variant; })+
                Self::Other(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::from(s.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.as_str().to_owned()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use open_enum;

/// JSON text with every lone UTF-16 surrogate escape (`\ud800`..`\udfff` not forming a
/// pair, e.g. half of an emoji cut by a truncation) replaced by `\ufffd`, so that a strict
/// parser accepts it; valid pairs, escaped backslashes and everything else are left as they
/// are. serde_json has no lossy mode for these, and refusing the whole document would lose
/// it (a webhook refused with 4xx is never sent again).
pub fn replace_lone_surrogates(json: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    fn hex4(b: &[u8]) -> Option<u16> {
        let s = std::str::from_utf8(b.get(..4)?).ok()?;
        u16::from_str_radix(s, 16).ok()
    }
    fn surrogate_at(json: &[u8], i: usize) -> Option<u16> {
        // `\uXXXX` starting at `i`.
        if json.get(i) == Some(&b'\\') && json.get(i + 1) == Some(&b'u') {
            hex4(&json[i + 2..]).filter(|u| (0xD800..=0xDFFF).contains(u))
        } else {
            None
        }
    }
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < json.len() {
        if json[i] != b'\\' {
            if let Some(o) = &mut out {
                o.push(json[i]);
            }
            i += 1;
            continue;
        }
        // An escape: `\\`, `\"`, ... are two bytes; `\uXXXX` six.
        let len = if json.get(i + 1) == Some(&b'u') { 6 } else { 2 };
        let lone = match surrogate_at(json, i) {
            Some(hi) if (0xD800..=0xDBFF).contains(&hi) => {
                match surrogate_at(json, i + 6) {
                    Some(lo) if (0xDC00..=0xDFFF).contains(&lo) => {
                        // A valid pair: copy both escapes.
                        let end = (i + 12).min(json.len());
                        if let Some(o) = &mut out {
                            o.extend_from_slice(&json[i..end]);
                        }
                        i = end;
                        continue;
                    }
                    _ => true,
                }
            }
            Some(_) => true, // a low surrogate with no high one before it
            None => false,
        };
        if lone {
            let o = out.get_or_insert_with(|| json[..i].to_vec());
            o.extend_from_slice(b"\\ufffd");
        } else if let Some(o) = &mut out {
            o.extend_from_slice(&json[i..(i + len).min(json.len())]);
        }
        i += len;
    }
    match out {
        Some(o) => std::borrow::Cow::Owned(o),
        None => std::borrow::Cow::Borrowed(json),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_become_replacement_characters_and_pairs_stay() {
        let fix = |s: &str| {
            String::from_utf8(replace_lone_surrogates(s.as_bytes()).into_owned()).unwrap()
        };
        assert_eq!(fix(r#"{"a":"x\ud800y"}"#), r#"{"a":"x\ufffdy"}"#);
        assert_eq!(fix(r#"{"a":"\udc00"}"#), r#"{"a":"\ufffd"}"#);
        assert_eq!(fix(r#"{"a":"\ud83d\ude00"}"#), r#"{"a":"\ud83d\ude00"}"#);
        assert_eq!(fix(r#"{"a":"\ud83d"}"#), r#"{"a":"\ufffd"}"#);
        assert_eq!(
            fix(r#"{"a":"\ud83d\ud83d\ude00"}"#),
            r#"{"a":"\ufffd\ud83d\ude00"}"#
        );
        // An escaped backslash followed by `ud800` is text, not an escape.
        assert_eq!(fix(r#"{"a":"\\ud800"}"#), r#"{"a":"\\ud800"}"#);
        assert_eq!(fix(r#"{"a":"\\\ud800"}"#), r#"{"a":"\\\ufffd"}"#);
        // A truncated escape at the end is left for the parser to refuse.
        assert_eq!(fix(r#"{"a":"\ud8"#), r#"{"a":"\ud8"#);
        let v: serde_json::Value =
            serde_json::from_slice(&replace_lone_surrogates(br#"{"a":"x\ud800"}"#)).unwrap();
        assert_eq!(v["a"], "x\u{fffd}");
        assert!(matches!(
            replace_lone_surrogates(br#"{"a":"ok"}"#),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
