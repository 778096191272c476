//! What a viewer sees of personal data: the first letter of each part and the length of a
//! text, never the data. Applied where a page's rows are built, so no template can forget.

/// `jane.doe@acme.com` → `j•••@a•••.com`.
pub fn email(s: &str) -> String {
    match s.split_once('@') {
        Some((local, domain)) => {
            let (host, tld) = domain.rsplit_once('.').unwrap_or((domain, ""));
            let tld = if tld.is_empty() {
                String::new()
            } else {
                format!(".{tld}")
            };
            format!("{}@{}{tld}", first(local), first(host))
        }
        None => first(s),
    }
}

/// `Jane Doe` → `J••• D•••`.
pub fn name(s: &str) -> String {
    s.split_whitespace()
        .map(first)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A message or payload text → `[hidden: 42 characters]`.
pub fn text(s: &str) -> String {
    format!("[hidden: {} characters]", s.chars().count())
}

/// Free text (a CRM's error, who installed the app) with every email in it masked; the rest
/// stays readable.
pub fn emails_in(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let trimmed = word.trim_matches(|c: char| !c.is_alphanumeric());
        if trimmed.contains('@') {
            out.push_str(&word.replace(trimmed, &email(trimmed)));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in s.chars() {
        if c.is_whitespace()
            || matches!(
                c,
                '"' | '\'' | '<' | '>' | ',' | ';' | '(' | ')' | '[' | ']'
            )
        {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn first(s: &str) -> String {
    match s.chars().next() {
        Some(c) => format!("{c}•••"),
        None => String::new(),
    }
}

/// Masks every string in a JSON value (object keys stay, so the payload's shape shows) and
/// keeps numbers, booleans and nulls: ids and times are not personal data on their own.
pub fn json(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) if s.contains('@') => Value::String(email(s)),
        Value::String(s) => Value::String(text(s)),
        Value::Array(a) => Value::Array(a.iter().map(json).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), json(v))).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_only_first_letters_and_lengths() {
        assert_eq!(email("jane.doe@acme.com"), "j•••@a•••.com");
        assert_eq!(email("x@localhost"), "x•••@l•••");
        assert_eq!(name("Jane  Doe"), "J••• D•••");
        assert_eq!(text("héllo"), "[hidden: 5 characters]");
        assert_eq!(
            emails_in("Lead \"ana.b@acme.io\" exists (dup of bo@x.org); retry"),
            "Lead \"a•••@a•••.io\" exists (dup of b•••@x•••.org); retry"
        );
        assert_eq!(emails_in("HubSpot answered 503"), "HubSpot answered 503");
        let v = json(&serde_json::json!({"type": "new_message", "orgId": 7,
            "data": {"body": "call me", "email": "a@b.io", "ids": [1, 2]}}));
        assert_eq!(
            v,
            serde_json::json!({"type": "[hidden: 11 characters]", "orgId": 7,
                "data": {"body": "[hidden: 7 characters]", "email": "a•••@b•••.io", "ids": [1, 2]}})
        );
    }
}
