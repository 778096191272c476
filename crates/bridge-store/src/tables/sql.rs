//! Columns in SQL: SQLite stores every cell as the row carries it (integers, text), while
//! PostgreSQL holds the typed columns natively (`timestamptz`, `boolean`, `jsonb`), which the
//! `Any` driver cannot bind or decode. Statements go through these expressions, so the same
//! statement text works on both backends and rows come back in their carried form.

use sqlx::Row as _;

use super::batch::Value;
use super::schema::{Column, ColumnType, Storage, Table};
use crate::{Backend, Error, Result};

/// `expr`, a SQL expression of a typed column, read back as the row carries it.
pub fn read_expr(backend: Backend, ty: ColumnType, expr: &str) -> String {
    match (backend, ty) {
        (Backend::Sqlite, _) | (_, ColumnType::Int | ColumnType::Text) => expr.to_owned(),
        (Backend::Postgres, ColumnType::Timestamp) => {
            format!("(EXTRACT(EPOCH FROM {expr}) * 1000)::BIGINT")
        }
        (Backend::Postgres, ColumnType::Bool) => format!("({expr})::INT::BIGINT"),
        (Backend::Postgres, ColumnType::Json) => format!("({expr})::TEXT"),
    }
}

/// `param` (a bind parameter or any expression in the carried form) as a value of a typed
/// column.
pub fn write_expr(backend: Backend, ty: ColumnType, param: &str) -> String {
    match (backend, ty) {
        (Backend::Sqlite, _) | (_, ColumnType::Int | ColumnType::Text) => param.to_owned(),
        (Backend::Postgres, ColumnType::Timestamp) => {
            format!("TO_TIMESTAMP(({param})::FLOAT8 / 1000)")
        }
        (Backend::Postgres, ColumnType::Bool) => format!("(({param})::BIGINT <> 0)"),
        (Backend::Postgres, ColumnType::Json) => format!("({param})::JSONB"),
    }
}

/// A timestamp column, in epoch milliseconds, for a `WHERE`, `ORDER BY` or `SELECT`.
pub fn ms(backend: Backend, column: &str) -> String {
    read_expr(backend, ColumnType::Timestamp, column)
}

/// A bind parameter holding epoch milliseconds, as a timestamp column's value.
pub fn at(backend: Backend, param: &str) -> String {
    write_expr(backend, ColumnType::Timestamp, param)
}

impl Column {
    /// The column in a `SELECT` list, as the row carries it, under its own name.
    pub fn select(&self, backend: Backend) -> String {
        let e = read_expr(backend, self.ty, self.name);
        if e == self.name {
            e
        } else {
            format!("{e} AS {}", self.name)
        }
    }

    /// Reads the cell at `i` of a fetched row.
    pub fn cell(&self, row: &sqlx::any::AnyRow, i: usize) -> Value {
        match self.ty.storage() {
            Storage::Int => Value::from(row.try_get::<Option<i64>, _>(i).ok().flatten()),
            Storage::Text => Value::from(row.try_get::<Option<String>, _>(i).ok().flatten()),
        }
    }
}

impl Table {
    /// Every column, for a `SELECT` whose rows [`Table::row`] reads.
    pub fn select_list(&self, backend: Backend) -> String {
        self.columns
            .iter()
            .map(|c| c.select(backend))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A fetched row of [`Table::select_list`].
    pub fn row(&self, row: &sqlx::any::AnyRow) -> Vec<Value> {
        self.columns
            .iter()
            .enumerate()
            .map(|(i, c)| c.cell(row, i))
            .collect()
    }
}

/// Binds a cell as the row carries it.
pub fn bind<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ty: ColumnType,
    v: &Value,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    match (v, ty.storage()) {
        (Value::Int(i), _) => q.bind(*i),
        (Value::Text(s), _) => q.bind(s.clone()),
        (Value::Null, Storage::Int) => q.bind(None::<i64>),
        (Value::Null, Storage::Text) => q.bind(None::<String>),
    }
}

/// A multi-row source for PostgreSQL of `columns`, read from the document bound as `$1`
/// ([`recordset`]): `SELECT conv(v.a), ... FROM json_to_recordset($1) AS v (a TYPE, ...)`.
pub(crate) fn recordset_source(columns: &[&Column]) -> String {
    let mut select = Vec::with_capacity(columns.len());
    let mut types = Vec::with_capacity(columns.len());
    for c in columns {
        // Instants travel as epoch milliseconds and are converted as everywhere else.
        let (expr, ty) = match c.ty {
            ColumnType::Timestamp => (
                write_expr(Backend::Postgres, c.ty, &format!("v.{}", c.name)),
                "BIGINT",
            ),
            ty => (format!("v.{}", c.name), ty.postgres()),
        };
        select.push(expr);
        types.push(format!("{} {ty}", c.name));
    }
    format!(
        "SELECT {} FROM json_to_recordset(($1)::TEXT::JSON) AS v ({})",
        select.join(", "),
        types.join(", ")
    )
}

/// The rows of `columns` as the JSON array of objects [`recordset_source`] reads: integers
/// and instants as numbers, flags as booleans, text as strings, documents nested as they
/// are. A document cell that is not JSON is refused (it would change the array around it).
pub(crate) fn recordset<'a, R>(
    table: &'static str,
    columns: &[&Column],
    rows: impl ExactSizeIterator<Item = R>,
) -> Result<String>
where
    R: Iterator<Item = &'a Value>,
{
    use std::io::Write as _;
    let mut out = Vec::with_capacity(rows.len() * columns.len() * 24);
    out.push(b'[');
    for (n, cells) in rows.enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.push(b'{');
        for (k, (c, v)) in columns.iter().zip(cells).enumerate() {
            if k > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(c.name.as_bytes());
            out.extend_from_slice(b"\":");
            match (v, c.ty) {
                (Value::Null, _) => out.extend_from_slice(b"null"),
                (Value::Int(i), ColumnType::Bool) => {
                    out.extend_from_slice(if *i != 0 { b"true" } else { b"false" })
                }
                (Value::Int(i), _) => {
                    write!(out, "{i}").expect("writing to memory");
                }
                (Value::Text(s), ColumnType::Json) => {
                    serde_json::from_str::<serde::de::IgnoredAny>(s).map_err(|source| {
                        Error::NotJson {
                            table,
                            column: c.name,
                            source,
                        }
                    })?;
                    out.extend_from_slice(s.as_bytes());
                }
                (Value::Text(s), _) => {
                    serde_json::to_writer(&mut out, s).expect("a string serializes");
                }
            }
        }
        out.push(b'}');
    }
    out.push(b']');
    Ok(String::from_utf8(out).expect("JSON text is UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::table;

    #[test]
    fn a_recordset_carries_typed_values_and_refuses_a_document_that_is_not_json() {
        let t = table("messages").unwrap();
        let columns: Vec<&Column> = t.columns.iter().collect();
        let at = |name: &str| t.columns.iter().position(|c| c.name == name).unwrap();
        let mut row: Vec<Value> = vec![Value::Null; t.columns.len()];
        row[at("id")] = Value::Int(7);
        row[at("author_bot")] = Value::Int(1);
        row[at("body")] = Value::from("say \"hi\"\n");
        row[at("context")] = Value::from(r#"{"ip":"10.0.0.1","n":[1,2]}"#);
        let doc = recordset(t.name, &columns, std::iter::once(row.iter())).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&doc).unwrap();
        let r = &parsed[0];
        assert_eq!(r["id"], 7);
        assert_eq!(r["author_bot"], true);
        assert_eq!(r["body"], "say \"hi\"\n");
        assert_eq!(r["context"]["n"][1], 2);
        assert!(r["edited_message_id"].is_null());
        assert_eq!(
            recordset_source(&columns).matches(" BIGINT").count(),
            t.columns
                .iter()
                .filter(|c| matches!(c.ty, ColumnType::Int | ColumnType::Timestamp))
                .count()
        );

        // Text that would close the object and add a row of its own is refused.
        row[at("context")] = Value::from(r#"1},{"id":8"#);
        let e = recordset(t.name, &columns, std::iter::once(row.iter())).unwrap_err();
        assert!(
            e.to_string().contains("messages.context is a JSON column"),
            "{e}"
        );
    }
}
