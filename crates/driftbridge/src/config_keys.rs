//! Keys the configuration does not know. serde stops at the first unknown field and cannot
//! say where a value came from; this walks the merged tree (defaults, file, `DRIFTBRIDGE_`
//! variables, flags) against the keys driftbridge reads and reports every stray key at once,
//! with its source (the file, or the exact environment variable) and the closest known key.

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
        .map(|md| {
            let keys: Vec<&str> = path.iter().map(String::as_str).collect();
            match &md.source {
                Some(figment::Source::File(f)) => format!(" in {}", f.display()),
                // The variable as driftbridge names it (figment's own interpolation drops
                // the prefix and the `__` separators).
                _ if md.name.contains("environment") => format!(
                    " from DRIFTBRIDGE_{}",
                    keys.iter()
                        .map(|k| k.to_uppercase())
                        .collect::<Vec<_>>()
                        .join("__")
                ),
                _ => format!(" from {}", md.name),
            }
        })
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
