//! Columns in SQL: SQLite stores every cell as the row carries it (integers, text), while
//! PostgreSQL holds the typed columns natively (`timestamptz`, `boolean`, `jsonb`), which the
//! `Any` driver cannot bind or decode. Statements go through these expressions, so the same
//! statement text works on both backends and rows come back in their carried form.

use sqlx::Row as _;

use super::batch::Value;
use super::schema::{Column, ColumnType, Storage, Table};
use crate::Backend;

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
