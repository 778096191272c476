//! Rows for the tests of the Parquet writer and of the staging it is written from.

use bridge_store::tables::{ColumnType, Row, Table, Value, table};

/// The `messages` table: it has a column of every type, nullable and not.
pub(crate) fn messages() -> &'static Table {
    table("messages").expect("the messages table")
}

/// A `messages` row; `n` varies every cell, odd rows leave the nullable ones NULL.
pub(crate) fn message_row(n: i64, body: &str) -> Row {
    messages()
        .columns
        .iter()
        .map(|c| match (c.ty, c.nullable && n % 2 == 1) {
            (_, true) => Value::Null,
            (ColumnType::Text, _) if c.name == "body" => Value::Text(body.into()),
            (ColumnType::Text, _) => Value::Text(format!("{}-{n}", c.name)),
            (ColumnType::Json, _) => Value::Text(format!(r#"{{"n":{n},"é":"ü"}}"#)),
            (ColumnType::Bool, _) => Value::Int(n % 3 % 2),
            (ColumnType::Timestamp, _) => Value::Int(1_767_225_600_000 + n),
            (ColumnType::Int, _) => Value::Int(n * 7),
        })
        .collect()
}
