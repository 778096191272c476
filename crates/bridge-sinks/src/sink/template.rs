//! Field templates: `{{path}}` placeholders over the bundle's context document, with `|`
//! fallbacks (`{{contact.company | "[not provided]"}}`). Parsed once, at configuration time.

use drift_types::html::escape;
use serde_json::{Map, Value};

/// A template that does not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("template {template:?}: {problem}")]
pub struct TemplateError {
    /// The template text.
    pub template: String,
    /// What is wrong with it.
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Alt {
    Path(Vec<String>),
    Lit(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Expr(Vec<Alt>),
}

/// A parsed string template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `{{ a.b | c | "literal" }}` placeholders in `text`.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let err = |problem: String| TemplateError {
            template: text.to_owned(),
            problem,
        };
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| err("a `{{` is never closed by `}}`".into()))?;
            let mut alts = Vec::new();
            for alt in after[..end].split('|') {
                let alt = alt.trim();
                if alt.is_empty() {
                    return Err(err("an empty placeholder or fallback".into()));
                }
                if let Some(lit) = alt.strip_prefix('"') {
                    let lit = lit
                        .strip_suffix('"')
                        .ok_or_else(|| err(format!("the literal {alt} is not closed by `\"`")))?;
                    alts.push(Alt::Lit(lit.to_owned()));
                } else if alt
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
                {
                    alts.push(Alt::Path(alt.split('.').map(str::to_owned).collect()));
                } else {
                    return Err(err(format!(
                        "{alt:?} is neither a path like contact.email nor a \"literal\""
                    )));
                }
            }
            parts.push(Part::Expr(alts));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// Evaluates against `ctx`. A template that is exactly one placeholder yields the value
    /// itself (a number stays a number, an object an object); anything else yields a string.
    /// With `escape_html`, substituted text is HTML-escaped, except values under
    /// `transcript`, which the context already holds in the sink's format.
    pub fn eval(&self, ctx: &Value, escape_html: bool) -> Value {
        if let [Part::Expr(alts)] = self.parts.as_slice() {
            let (v, raw) = pick(alts, ctx);
            return match v {
                Value::String(s) if escape_html && !raw => Value::String(escape(&s)),
                v => v,
            };
        }
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Expr(alts) => {
                    let (v, raw) = pick(alts, ctx);
                    let s = as_text(&v);
                    if escape_html && !raw {
                        out.push_str(&escape(&s));
                    } else {
                        out.push_str(&s);
                    }
                }
            }
        }
        Value::String(out)
    }

    /// The paths this template names that `shape` (see
    /// [`context_shape`](super::bundle::context_shape)) does not have, dotted. A path that
    /// reaches an open map ([`OPEN`](super::bundle::OPEN)) or a list is known.
    pub fn unknown_paths(&self, shape: &Value) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.parts {
            let Part::Expr(alts) = p else { continue };
            for a in alts {
                let Alt::Path(path) = a else { continue };
                let mut node = shape;
                for (i, k) in path.iter().enumerate() {
                    match node {
                        Value::String(s) if s == super::bundle::OPEN => break,
                        Value::Array(_) => break,
                        Value::Object(o) => match o.get(k.as_str()) {
                            Some(next) => node = next,
                            None => {
                                out.push(path[..=i].join("."));
                                break;
                            }
                        },
                        _ => {
                            out.push(path[..=i].join("."));
                            break;
                        }
                    }
                }
            }
        }
        out
    }

    /// Evaluates to text (`""` for null).
    pub fn text(&self, ctx: &Value, escape_html: bool) -> String {
        as_text(&self.eval(ctx, escape_html))
    }
}

/// The first alternative that is present and not empty; whether it is pre-formatted.
fn pick(alts: &[Alt], ctx: &Value) -> (Value, bool) {
    for a in alts {
        match a {
            Alt::Lit(s) => return (Value::String(s.clone()), false),
            Alt::Path(p) => {
                let mut v = ctx;
                let mut found = true;
                for k in p {
                    match v.get(k.as_str()) {
                        Some(x) => v = x,
                        None => {
                            found = false;
                            break;
                        }
                    }
                }
                let empty = matches!(v, Value::Null) || v.as_str().is_some_and(str::is_empty);
                if found && !empty {
                    return (v.clone(), p.first().is_some_and(|k| k == "transcript"));
                }
            }
        }
    }
    (Value::Null, false)
}

/// A JSON value as text: strings as they are, null as nothing, the rest as JSON.
pub fn as_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// CRM fields from templates: the sink's defaults, overlaid by configuration (an empty
/// template removes a default field).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldMap(Vec<(String, Template)>);

impl FieldMap {
    /// `defaults` overlaid by `overrides`.
    pub fn build(
        defaults: &[(&str, &str)],
        overrides: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, TemplateError> {
        let mut fields: Vec<(String, String)> = defaults
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        for (k, v) in overrides {
            fields.retain(|(f, _)| f != k);
            if !v.trim().is_empty() {
                fields.push((k.clone(), v.clone()));
            }
        }
        let parsed = fields
            .into_iter()
            .map(|(k, v)| Ok((k, Template::parse(&v)?)))
            .collect::<Result<Vec<_>, TemplateError>>()?;
        Ok(FieldMap(parsed))
    }

    /// The fields with a value, as strings (CRMs take text); empty ones are left out so a
    /// missing Drift attribute never clears a CRM value.
    pub fn render(&self, ctx: &Value) -> Map<String, Value> {
        let mut out = Map::new();
        for (k, t) in &self.0 {
            let s = t.text(ctx, false);
            if !s.is_empty() {
                out.insert(k.clone(), Value::String(s));
            }
        }
        out
    }

    /// Whether a field is mapped.
    pub fn has(&self, field: &str) -> bool {
        self.0.iter().any(|(k, _)| k == field)
    }
}

/// A JSON document template: every string in it is a [`Template`].
#[derive(Debug, Clone, PartialEq)]
pub enum JsonTemplate {
    /// A string template.
    Text(Template),
    /// An array of templates.
    Array(Vec<JsonTemplate>),
    /// An object of templates.
    Object(Vec<(String, JsonTemplate)>),
    /// A number, boolean or null, kept as is.
    Plain(Value),
}

impl JsonTemplate {
    /// Parses every string of `doc`.
    pub fn parse(doc: &Value) -> Result<Self, TemplateError> {
        Ok(match doc {
            Value::String(s) => JsonTemplate::Text(Template::parse(s)?),
            Value::Array(a) => {
                JsonTemplate::Array(a.iter().map(Self::parse).collect::<Result<_, _>>()?)
            }
            Value::Object(o) => JsonTemplate::Object(
                o.iter()
                    .map(|(k, v)| Ok((k.clone(), Self::parse(v)?)))
                    .collect::<Result<_, TemplateError>>()?,
            ),
            other => JsonTemplate::Plain(other.clone()),
        })
    }

    /// The document for `ctx`.
    pub fn render(&self, ctx: &Value) -> Value {
        match self {
            JsonTemplate::Text(t) => t.eval(ctx, false),
            JsonTemplate::Array(a) => Value::Array(a.iter().map(|t| t.render(ctx)).collect()),
            JsonTemplate::Object(o) => {
                Value::Object(o.iter().map(|(k, t)| (k.clone(), t.render(ctx))).collect())
            }
            JsonTemplate::Plain(v) => v.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Value {
        json!({"contact": {"email": "a@b.com", "company": "", "score": 7, "name": "<Al>"},
               "transcript": "<p>hi</p>", "tags": ["x"]})
    }

    #[test]
    fn placeholders_fall_back_and_keep_types() {
        let t = Template::parse("{{contact.company | contact.missing | \"[none]\"}}").unwrap();
        assert_eq!(t.eval(&ctx(), false), json!("[none]"));
        assert_eq!(
            Template::parse("{{contact.score}}")
                .unwrap()
                .eval(&ctx(), false),
            json!(7)
        );
        assert_eq!(
            Template::parse("score {{contact.score}} for {{contact.email}}")
                .unwrap()
                .text(&ctx(), false),
            "score 7 for a@b.com"
        );
        assert_eq!(
            Template::parse("{{tags}}").unwrap().eval(&ctx(), false),
            json!(["x"])
        );
        assert_eq!(
            Template::parse("{{nothing}}").unwrap().eval(&ctx(), false),
            Value::Null
        );
    }

    #[test]
    fn html_escaping_spares_the_preformatted_transcript() {
        let t = Template::parse("<b>{{contact.name}}</b>{{transcript}}").unwrap();
        assert_eq!(t.text(&ctx(), true), "<b>&lt;Al&gt;</b><p>hi</p>");
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        for (t, what) in [
            ("{{contact.email", "never closed"),
            ("{{ }}", "empty"),
            ("{{\"open}}", "not closed"),
            ("{{a b}}", "neither a path"),
        ] {
            let e = Template::parse(t).unwrap_err().to_string();
            assert!(e.contains(what), "{t}: {e}");
        }
    }

    #[test]
    fn field_maps_overlay_and_drop_empty_values() {
        let mut o = std::collections::BTreeMap::new();
        o.insert("company".to_owned(), String::new());
        o.insert("score".to_owned(), "{{contact.score}}".to_owned());
        let m = FieldMap::build(
            &[
                ("email", "{{contact.email}}"),
                ("company", "{{contact.company}}"),
                ("x", "{{contact.company}}"),
            ],
            &o,
        )
        .unwrap();
        assert!(!m.has("company"));
        let r = m.render(&ctx());
        assert_eq!(Value::Object(r), json!({"email": "a@b.com", "score": "7"}));
    }

    #[test]
    fn json_templates_render_nested_documents() {
        let t = JsonTemplate::parse(
            &json!({"who": "{{contact.email}}", "n": 1, "l": ["{{contact.score}}"]}),
        )
        .unwrap();
        assert_eq!(
            t.render(&ctx()),
            json!({"who": "a@b.com", "n": 1, "l": [7]})
        );
    }
}
