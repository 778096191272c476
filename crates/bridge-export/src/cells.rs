//! A cell as the outside world reads it (docs/SCHEMA.md, "Types"): rows carry instants as
//! epoch milliseconds, flags as 0/1 and JSON documents as text; JSONL, CSV and Airbyte records
//! hold them as ISO-8601 text, booleans and nested JSON. The readers convert back, so a file
//! destination reads as the rows it was given.

use bridge_store::tables::{Column, ColumnType, Value};
use chrono::{DateTime, SecondsFormat, Utc};

/// `2026-01-01T00:00:00.123Z`: always milliseconds and `Z`, so text order is time order.
/// `None` for an instant outside what the calendar can write (beyond year ±262,000).
pub fn iso(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Epoch milliseconds of an RFC 3339 instant.
pub fn parse_iso(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The cell as a JSON value (JSONL lines and Airbyte records).
pub fn to_json(c: &Column, v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match (c.ty, v) {
        (_, Value::Null) => J::Null,
        (ColumnType::Timestamp, Value::Int(ms)) => iso(*ms).map_or(J::Null, J::String),
        (ColumnType::Bool, Value::Int(i)) => J::Bool(*i != 0),
        // A document that is not JSON (never written by driftbridge) stays a string.
        (ColumnType::Json, Value::Text(s)) => {
            serde_json::from_str(s).unwrap_or_else(|_| J::String(s.clone()))
        }
        (_, v) => v.to_json(),
    }
}

/// The JSON value of [`to_json`] back as the row carried it.
pub fn from_json(c: &Column, v: Option<&serde_json::Value>) -> Value {
    use serde_json::Value as J;
    match (c.ty, v) {
        (_, None | Some(J::Null)) => Value::Null,
        (ColumnType::Timestamp, Some(J::String(s))) => parse_iso(s).into(),
        (ColumnType::Bool, Some(J::Bool(b))) => (*b).into(),
        (ColumnType::Json, Some(doc)) => Value::Text(doc.to_string()),
        (_, Some(J::Number(n))) => n.as_i64().map_or(Value::Null, Value::Int),
        (_, Some(J::String(s))) => Value::Text(s.clone()),
        _ => Value::Null,
    }
}

/// The cell as CSV text: empty for NULL, ISO-8601 instants, `true`/`false`, JSON as its text.
pub fn to_csv(c: &Column, v: &Value) -> String {
    match (c.ty, v) {
        (_, Value::Null) => String::new(),
        (ColumnType::Timestamp, Value::Int(ms)) => iso(*ms).unwrap_or_default(),
        (ColumnType::Bool, Value::Int(i)) => if *i != 0 { "true" } else { "false" }.to_owned(),
        (_, Value::Int(i)) => i.to_string(),
        (_, Value::Text(s)) => s.clone(),
    }
}

/// A CSV field of [`to_csv`] back as the row carried it.
pub fn from_csv(c: &Column, s: &str) -> Value {
    match (c.ty, s) {
        (_, "") => Value::Null,
        (ColumnType::Timestamp, s) => parse_iso(s).into(),
        (ColumnType::Bool, s) => (s == "true").into(),
        (ColumnType::Int, s) => s.parse::<i64>().ok().into(),
        (ColumnType::Text | ColumnType::Json, s) => Value::Text(s.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bridge_store::tables::table;

    #[test]
    fn every_type_goes_out_and_comes_back_the_same() {
        let t = table("messages").unwrap();
        let at = |n: &str| &t.columns[t.index(n).unwrap()];
        assert_eq!(iso(1_767_225_600_123).unwrap(), "2026-01-01T00:00:00.123Z");
        assert_eq!(iso(0).unwrap(), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(-1).unwrap(), "1969-12-31T23:59:59.999Z");
        assert_eq!(iso(i64::MAX), None);
        for (col, v) in [
            ("created_at", Value::Int(1_767_225_600_123)),
            ("created_at", Value::Int(-86_400_001)),
            ("author_bot", Value::Int(1)),
            ("author_bot", Value::Int(0)),
            (
                "context",
                Value::Text(r#"{"ip":"1.2.3.4","n":[1,2]}"#.into()),
            ),
            (
                "context",
                Value::Text(r#""a string is a document too""#.into()),
            ),
            ("body", Value::Text("a,\"b\"\n".into())),
            ("author_id", Value::Int(-7)),
            ("body", Value::Null),
        ] {
            let c = at(col);
            assert_eq!(from_json(c, Some(&to_json(c, &v))), v, "{col} json");
            assert_eq!(from_csv(c, &to_csv(c, &v)), v, "{col} csv");
        }
        assert_eq!(
            to_json(at("context"), &Value::Text(r#"{"ip":"1.2.3.4"}"#.into())),
            serde_json::json!({"ip": "1.2.3.4"}),
            "a document is nested, not an escaped string"
        );
        assert_eq!(
            to_json(at("author_bot"), &Value::Int(1)),
            serde_json::json!(true)
        );
        assert_eq!(to_csv(at("author_bot"), &Value::Int(0)), "false");
    }
}
