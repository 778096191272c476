//! The connector's specification and catalog: one stream per exported table, with a JSON
//! schema built from the same table definitions as every other destination.

use bridge_store::tables::{Column, ColumnType, Stream, TABLES, Table};
use serde_json::{Value, json};

pub(crate) fn spec() -> Value {
    json!({
        "documentationUrl": "https://github.com/driftbridge/driftbridge/blob/main/docs/SCHEMA.md",
        "supportsIncremental": true,
        "connectionSpecification": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "Drift source (driftbridge)",
            "type": "object",
            "required": ["access_token"],
            "additionalProperties": false,
            "properties": {
                "access_token": {"type": "string", "airbyte_secret": true,
                    "description": "A Drift OAuth access token or private-app token."},
                "base_url": {"type": "string", "default": "https://driftapi.com"},
                "org_id": {"type": "integer",
                    "description": "The Drift org (default: asked of token introspection)."},
                "rate_limit_per_minute": {"type": "integer", "default": 600, "minimum": 0},
                "concurrency": {"type": "integer", "default": 16, "minimum": 1},
                "meetings_since": {"type": "string",
                    "description": "YYYY-MM-DD or epoch ms; default 30 days ago."},
                "overlap_seconds": {"type": "integer", "default": 3600, "minimum": 0},
                "driftbridge_database_url": {"type": "string", "airbyte_secret": true,
                    "description": "The database driftbridge serve writes (sqlite:PATH or \
                    postgres://...): the widget streams and the facts' goals and first touch \
                    come from it, since Drift has no copy; without it they are empty."}
            }
        }
    })
}

/// Which checkpoints cover a table: the conversation walk for its family, the contact list
/// for contacts, the table's own stream otherwise.
pub(crate) fn covering(t: &Table) -> Vec<&'static str> {
    match t.stream {
        Stream::Conversations | Stream::Messages | Stream::Transcripts => vec!["conversations"],
        Stream::Contacts => vec!["conversations", "contact_list"],
        s => vec![s.name()],
    }
}

pub(crate) fn incremental(t: &Table) -> bool {
    covering(t).contains(&"conversations")
}

/// A column's JSON schema, with the `format` and `airbyte_type` that let Airbyte destinations
/// type it (docs/SCHEMA.md, "Types").
fn column_schema(c: &Column) -> Value {
    let typed = |ty: &str| {
        if c.nullable {
            json!([ty, "null"])
        } else {
            json!(ty)
        }
    };
    match c.ty {
        ColumnType::Int => json!({"type": typed("integer"), "airbyte_type": "integer"}),
        ColumnType::Text => json!({"type": typed("string")}),
        ColumnType::Bool => json!({"type": typed("boolean")}),
        ColumnType::Timestamp => json!({
            "type": typed("string"),
            "format": "date-time",
            "airbyte_type": "timestamp_with_timezone",
        }),
        // A custom property's value is any JSON; the other documents are objects.
        ColumnType::Json if c.name == "value" => json!({}),
        ColumnType::Json => json!({"type": typed("object")}),
    }
}

fn stream_schema(t: &Table) -> Value {
    let props: serde_json::Map<String, Value> = t
        .columns
        .iter()
        .map(|c| (c.name.to_owned(), column_schema(c)))
        .collect();
    let mut s = json!({
        "name": t.name,
        "json_schema": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": props,
            "required": t.columns.iter().filter(|c| !c.nullable).map(|c| c.name).collect::<Vec<_>>(),
        },
        "supported_sync_modes": if incremental(t) { json!(["full_refresh", "incremental"]) } else { json!(["full_refresh"]) },
        "source_defined_primary_key": t.columns[..t.key].iter().map(|c| vec![c.name]).collect::<Vec<_>>(),
    });
    if incremental(t) {
        s["source_defined_cursor"] = json!(true);
        if t.index("updated_at").is_some() {
            s["default_cursor_field"] = json!(["updated_at"]);
        }
    }
    s
}

pub(crate) fn catalog() -> Value {
    json!({"streams": TABLES.iter().map(stream_schema).collect::<Vec<_>>()})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_is_a_stream_and_only_the_conversation_family_is_incremental() {
        let c = catalog();
        let streams = c["streams"].as_array().unwrap();
        assert_eq!(streams.len(), TABLES.len());
        let inc: Vec<&str> = streams
            .iter()
            .filter(|s| s["supported_sync_modes"].as_array().unwrap().len() == 2)
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert!(inc.contains(&"messages") && inc.contains(&"contacts"));
        assert!(!inc.contains(&"users") && !inc.contains(&"accounts"));
    }

    #[test]
    fn typed_columns_tell_airbyte_their_types() {
        let c = catalog();
        let props = |name: &str| {
            c["streams"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == name)
                .unwrap()["json_schema"]["properties"]
                .clone()
        };
        let m = props("messages");
        assert_eq!(
            m["created_at"],
            json!({"type": "string", "format": "date-time",
                   "airbyte_type": "timestamp_with_timezone"})
        );
        assert_eq!(m["author_bot"], json!({"type": "boolean"}));
        assert_eq!(m["context"], json!({"type": ["object", "null"]}));
        assert_eq!(
            m["id"],
            json!({"type": "integer", "airbyte_type": "integer"})
        );
        assert_eq!(
            props("conversations")["_deleted_at"]["type"],
            json!(["string", "null"])
        );
        assert_eq!(props("account_custom_properties")["value"], json!({}));
    }
}
