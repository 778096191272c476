//! Cells, rows, and a batch of rows for several tables in [`TABLES`] order.

use super::defs::TABLES;
use super::schema::{ColumnType, SYNCED_AT, Table};

/// One cell.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
}

impl Value {
    /// The integer, if it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The text, if it is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// As JSON: null, a number or a string.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Int(i) => (*i).into(),
            Value::Text(s) => s.clone().into(),
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(i64::from(v))
    }
}
/// What no destination may hold in text: PostgreSQL refuses U+0000 in `TEXT` (`invalid byte
/// sequence for encoding "UTF8": 0x00`). Every text cell replaces it with U+FFFD, on every
/// destination alike, so one conversation reads the same everywhere (docs/SCHEMA.md).
pub const NUL_REPLACEMENT: &str = "\u{fffd}";

/// `s` with every U+0000 replaced by [`NUL_REPLACEMENT`] (borrowed when it holds none).
pub fn without_nul(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', NUL_REPLACEMENT))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        match without_nul(&v) {
            std::borrow::Cow::Owned(clean) => Value::Text(clean),
            std::borrow::Cow::Borrowed(_) => Value::Text(v),
        }
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::from(v.to_owned())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// The first instant every destination can hold: 0001-01-01T00:00:00Z.
pub const MIN_INSTANT_MS: i64 = -62_135_596_800_000;
/// The last: 9999-12-31T23:59:59.999Z (ISO-8601 text has four-digit years).
pub const MAX_INSTANT_MS: i64 = 253_402_300_799_999;

/// An instant no destination could hold (a hostile or broken `createdAt`) becomes NULL, or,
/// in a column that cannot be NULL, the nearest instant that can be held: one bad field does
/// not stop a conversation from being written, and every destination holds the same value.
fn clamp_instant(v: &mut Value, nullable: bool) {
    if let Value::Int(ms) = *v
        && !(MIN_INSTANT_MS..=MAX_INSTANT_MS).contains(&ms)
    {
        *v = if nullable {
            Value::Null
        } else {
            Value::Int(ms.clamp(MIN_INSTANT_MS, MAX_INSTANT_MS))
        };
    }
}

/// One row, in its table's column order.
pub type Row = Vec<Value>;

/// Rows for several tables, in [`TABLES`] order.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    rows: Vec<Vec<Row>>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch {
            rows: vec![Vec::new(); TABLES.len()],
        }
    }

    /// Adds a row. A row one cell short of its table gets `_synced_at`, the table's last
    /// column, stamped with the time now.
    pub fn push(&mut self, table: &'static Table, mut row: Row) {
        if row.len() + 1 == table.columns.len()
            && table.columns.last().is_some_and(|c| c.name == SYNCED_AT)
        {
            // Exactly one more cell: a plain push would double the row's allocation (rows
            // are built with exact capacity), which was a third of an export's heap peak.
            row.reserve_exact(1);
            row.push(Value::Int(drift_types::now_ms()));
        }
        debug_assert_eq!(row.len(), table.columns.len(), "row of {}", table.name);
        for (c, v) in table.columns.iter().zip(row.iter_mut()) {
            if c.ty == ColumnType::Timestamp {
                clamp_instant(v, c.nullable);
            }
        }
        if self.rows.is_empty() {
            self.rows = vec![Vec::new(); TABLES.len()];
        }
        self.rows[table.position()].push(row);
    }

    /// The rows of one table.
    pub fn rows(&self, table: &Table) -> &[Row] {
        self.rows
            .get(table.position())
            .map_or(&[][..], Vec::as_slice)
    }

    /// Keeps only the rows of `table` for which `keep` answers true.
    pub fn retain(&mut self, table: &Table, keep: impl FnMut(&Row) -> bool) {
        if let Some(rows) = self.rows.get_mut(table.position()) {
            rows.retain(keep);
        }
    }

    /// Tables with rows, in order.
    pub fn tables(&self) -> impl Iterator<Item = (&'static Table, &[Row])> {
        TABLES
            .iter()
            .zip(self.rows.iter())
            .filter(|(_, r)| !r.is_empty())
            .map(|(t, r)| (t, r.as_slice()))
    }

    /// Total rows.
    pub fn len(&self) -> usize {
        self.rows.iter().map(Vec::len).sum()
    }

    /// Whether it holds no row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves every row of `other` into this batch.
    pub fn append(&mut self, other: Batch) {
        for (i, rows) in other.rows.into_iter().enumerate() {
            if !rows.is_empty() {
                if self.rows.is_empty() {
                    self.rows = vec![Vec::new(); TABLES.len()];
                }
                self.rows[i].extend(rows);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamped_row_holds_no_more_memory_than_its_cells() {
        let t = crate::tables::table("transcripts").unwrap();
        let mut b = Batch::new();
        let cells = t.columns.len() - 1;
        let mut row: Row = Vec::with_capacity(cells);
        row.extend([1.into(), 2.into(), "hi".into()]);
        assert_eq!(row.len(), cells);
        b.push(t, row);
        let stored = &b.rows(t)[0];
        assert_eq!(stored.len(), t.columns.len());
        assert!(stored[cells].as_i64().is_some(), "stamped with _synced_at");
        assert_eq!(stored.capacity(), stored.len(), "no spare cells");
    }
}
