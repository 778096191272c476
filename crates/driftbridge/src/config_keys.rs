//! Keys the configuration does not know, and values it cannot read. serde stops at the first
//! unknown field and cannot say where a value came from; this walks the merged tree
//! (defaults, file, `DRIFTBRIDGE_` variables, flags) against the keys driftbridge reads and
//! reports every stray key at once, with its source (the file, or the exact environment
//! variable) and the closest known key. A value of the wrong type is reported the same way,
//! by its setting's name ([`explain`]).

use figment::Figment;
use serde_json::Value;

/// Maps whose keys are the user's own names: their entries are checked elsewhere (sink specs
/// by serde with `deny_unknown_fields`, token keys by validation).
const OPEN_MAPS: &[&str] = &["drift.tokens", "sinks"];

/// One problem per key of `merged` that `known` does not have.
pub fn unknown_keys(fig: &Figment, merged: &Value, known: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(fig, merged, known, &mut Vec::new(), &mut out);
    out
}

fn walk(
    fig: &Figment,
    merged: &Value,
    known: &Value,
    path: &mut Vec<String>,
    out: &mut Vec<String>,
) {
    let (Value::Object(m), Value::Object(k)) = (merged, known) else {
        return;
    };
    for (key, value) in m {
        path.push(key.clone());
        let dotted = path.join(".");
        match k.get(key) {
            Some(_) if OPEN_MAPS.contains(&dotted.as_str()) => {}
            Some(next) => walk(fig, value, next, path, out),
            None => out.push(describe(fig, path, k.keys())),
        }
        path.pop();
    }
}

fn describe<'a>(
    fig: &Figment,
    path: &[String],
    siblings: impl Iterator<Item = &'a String>,
) -> String {
    let dotted = path.join(".");
    let source = fig
        .find_metadata(&dotted)
        .map(|md| origin(md, path))
        .unwrap_or_default();
    let last = path.last().map(String::as_str).unwrap_or_default();
    let hint = siblings
        .map(|s| (strsim::levenshtein(last, s), s))
        .filter(|(d, s)| *d <= 2.max(s.len() / 4))
        .min()
        .map(|(_, s)| {
            let mut p = path[..path.len() - 1].to_vec();
            p.push(s.clone());
            format!("; did you mean {}?", p.join("."))
        })
        .unwrap_or_default();
    format!("unknown key {dotted}{source}{hint}")
}

/// One extraction error as the user can act on it: the setting's dotted name, what was
/// wrong, and where it came from ([`origin`], as for an unknown key), without figment's
/// profile name. A sink's table is read by its `kind`, which hides the field at fault from
/// the error; that table is read again as its kind's settings, so the error names the field.
pub(crate) fn explain(fig: &Figment, e: figment::Error) -> Vec<String> {
    if let [sinks, name] = e.path.as_slice()
        && sinks == "sinks"
    {
        let focus = fig.focus(&format!("sinks.{name}"));
        let inner = match focus.extract_inner::<String>("kind").ok().as_deref() {
            Some("hubspot") => focus.extract::<bridge_sinks::hubspot::HubSpotSpec>().err(),
            Some("salesforce") => focus
                .extract::<bridge_sinks::salesforce::SalesforceSpec>()
                .err(),
            Some("marketo") => focus.extract::<bridge_sinks::marketo::MarketoSpec>().err(),
            Some("http") => focus.extract::<bridge_sinks::http::HttpSpec>().err(),
            _ => None,
        };
        if let Some(inner) = inner {
            return inner
                .into_iter()
                .map(|mut i| {
                    i.path.splice(0..0, [sinks.clone(), name.clone()]);
                    value_error(&i)
                })
                .collect();
        }
    }
    vec![value_error(&e)]
}

/// Where a value came from, as the user set it: ` in FILE`, or ` from DRIFTBRIDGE_A__B` (the
/// variable as driftbridge names it: figment's own interpolation drops the prefix and the `__`
/// separators), or ` from` the provider.
fn origin(md: &figment::Metadata, path: &[String]) -> String {
    match &md.source {
        Some(figment::Source::File(f)) => format!(" in {}", f.display()),
        _ if md.name.contains("environment") => format!(
            " from DRIFTBRIDGE_{}",
            path.iter()
                .map(|k| k.to_uppercase())
                .collect::<Vec<_>>()
                .join("__")
        ),
        _ => format!(" from {}", md.name),
    }
}

fn value_error(e: &figment::Error) -> String {
    let source = e
        .metadata
        .as_ref()
        .map(|md| origin(md, &e.path))
        .unwrap_or_default();
    match e.path.join(".") {
        key if key.is_empty() => format!("{}{source}", e.kind),
        key => format!("{key}: {}{source}", e.kind),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Overrides};

    /// A value of the wrong type is named by its setting, not by figment's profile
    /// (`default.`), and inside a sink's table by its field: the sink's `kind` used to hide it
    /// (`for key "default.sinks.hs"`).
    #[test]
    fn a_value_of_the_wrong_type_names_its_setting_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bad.toml");
        for (toml, want) in [
            (
                "[sinks.hs]\nkind = \"hubspot\"\ntoken = 5\n",
                "sinks.hs.token: invalid type: found signed int `5`, expected a string",
            ),
            (
                "[sinks.hook]\nkind = \"http\"\nurl = \"https://x.example\"\nsecret = []\n",
                "sinks.hook.secret: invalid type: found sequence",
            ),
            (
                "[sinks.hs]\nkind = \"hubspt\"\n",
                "sinks.hs.kind: unknown variant",
            ),
            (
                "[workers]\nconcurrency = \"lots\"\n",
                "workers.concurrency: invalid type: found string \"lots\"",
            ),
            (
                "[retention]\nmessage_bodies_days = -3\n",
                "retention.message_bodies_days: invalid value",
            ),
        ] {
            std::fs::write(&f, toml).unwrap();
            let e = Config::load(Some(&f), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{toml}: {e}");
            assert!(e.contains(&f.display().to_string()), "{toml}: {e}");
            assert!(!e.contains("default."), "{toml}: {e}");
        }
    }
}
