//! What a table is: its columns and their types, its key, its parent, and the stream that
//! fills it.

/// A column's type: what the value means, which decides how each destination holds it
/// (docs/SCHEMA.md, "Types"). Rows carry every cell as a [`crate::tables::Value`] integer or
/// text ([`ColumnType::storage`]); the destinations convert at their edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// A 64-bit integer: ids, counts, durations in milliseconds.
    Int,
    /// Text.
    Text,
    /// An instant, carried as epoch milliseconds: `timestamptz` in PostgreSQL, Parquet
    /// `TIMESTAMP(MILLIS, UTC)`, ISO-8601 in JSONL, CSV and Airbyte, the integer in SQLite.
    Timestamp,
    /// A boolean, carried as 0/1: `boolean` in PostgreSQL, Parquet and JSONL; `true`/`false`
    /// in CSV; 0/1 in SQLite.
    Bool,
    /// A JSON document, carried as its text: `jsonb` in PostgreSQL, a nested value in JSONL
    /// and Airbyte, the JSON text in CSV, Parquet and SQLite.
    Json,
}

/// How a row carries a cell of some [`ColumnType`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// [`crate::tables::Value::Int`].
    Int,
    /// [`crate::tables::Value::Text`].
    Text,
}

impl ColumnType {
    /// How rows carry it (and how SQLite stores it).
    pub fn storage(self) -> Storage {
        match self {
            ColumnType::Int | ColumnType::Timestamp | ColumnType::Bool => Storage::Int,
            ColumnType::Text | ColumnType::Json => Storage::Text,
        }
    }

    /// Its PostgreSQL type.
    pub fn postgres(self) -> &'static str {
        match self {
            ColumnType::Int => "BIGINT",
            ColumnType::Text => "TEXT",
            ColumnType::Timestamp => "TIMESTAMPTZ",
            ColumnType::Bool => "BOOLEAN",
            ColumnType::Json => "JSONB",
        }
    }
}

/// One column.
#[derive(Debug)]
pub struct Column {
    /// Name, the same in every destination.
    pub name: &'static str,
    /// Type.
    pub ty: ColumnType,
    /// Whether it can be NULL.
    pub nullable: bool,
}

const fn col(name: &'static str, ty: ColumnType, nullable: bool) -> Column {
    Column { name, ty, nullable }
}
pub(super) const fn int(name: &'static str) -> Column {
    col(name, ColumnType::Int, false)
}
pub(super) const fn int_null(name: &'static str) -> Column {
    col(name, ColumnType::Int, true)
}
pub(super) const fn text(name: &'static str) -> Column {
    col(name, ColumnType::Text, false)
}
pub(super) const fn text_null(name: &'static str) -> Column {
    col(name, ColumnType::Text, true)
}
pub(super) const fn ts(name: &'static str) -> Column {
    col(name, ColumnType::Timestamp, false)
}
pub(super) const fn ts_null(name: &'static str) -> Column {
    col(name, ColumnType::Timestamp, true)
}
pub(super) const fn boolean(name: &'static str) -> Column {
    col(name, ColumnType::Bool, false)
}
pub(super) const fn json(name: &'static str) -> Column {
    col(name, ColumnType::Json, false)
}
pub(super) const fn json_null(name: &'static str) -> Column {
    col(name, ColumnType::Json, true)
}
/// When driftbridge last wrote a change to the row: the last column of every table, volatile,
/// stamped by [`crate::tables::Batch::push`] when a mapping leaves it out.
pub(super) const fn synced() -> Column {
    col(SYNCED_AT, ColumnType::Timestamp, true)
}

/// The name of the column every table ends with.
pub const SYNCED_AT: &str = "_synced_at";

/// The export streams: what `--tables` selects and what Airbyte calls a stream's family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stream {
    /// Accounts and their custom properties.
    Accounts,
    /// Users (agents and bots).
    Users,
    /// Conversations, participants and tags.
    Conversations,
    /// Messages and their buttons.
    Messages,
    /// Plain-text transcripts.
    Transcripts,
    /// Contacts referenced by conversations, events or a list.
    Contacts,
    /// Playbooks, goals and conversational landing pages.
    Playbooks,
    /// Booked meetings.
    Meetings,
    /// What the browser reported through /widget.js, the first touch derived from it per
    /// conversation, and visitors' consent: collected by `serve`, not fetched from Drift, so an
    /// export reads them from the driftbridge store.
    Widget,
}

impl Stream {
    /// Every stream, in the order an export walks them.
    pub const ALL: [Stream; 9] = [
        Stream::Users,
        Stream::Playbooks,
        Stream::Accounts,
        Stream::Meetings,
        Stream::Conversations,
        Stream::Messages,
        Stream::Transcripts,
        Stream::Contacts,
        Stream::Widget,
    ];

    /// The stream's name.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Accounts => "accounts",
            Stream::Users => "users",
            Stream::Conversations => "conversations",
            Stream::Messages => "messages",
            Stream::Transcripts => "transcripts",
            Stream::Contacts => "contacts",
            Stream::Playbooks => "playbooks",
            Stream::Meetings => "meetings",
            Stream::Widget => "widget",
        }
    }

    /// Parses a stream name.
    pub fn parse(s: &str) -> Option<Stream> {
        Stream::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// One table.
#[derive(Debug)]
pub struct Table {
    /// Name, the same in every destination.
    pub name: &'static str,
    /// Columns in order.
    pub columns: &'static [Column],
    /// The first `key` columns are the primary key.
    pub key: usize,
    /// For a child table, the parent's name; the parent's key is this table's first `key - 1`
    /// columns.
    pub parent: Option<&'static str>,
    /// Columns that say when driftbridge wrote the row rather than what Drift holds; a row
    /// that differs only in these is unchanged.
    pub volatile: &'static [&'static str],
    /// Columns a SQL store computes itself, from other tables, after every write that could
    /// change them (the SQL upsert leaves them out); a file destination takes them from the
    /// row as the export computed it.
    pub derived: &'static [&'static str],
    /// The stream that fills it.
    pub stream: Stream,
}

impl Table {
    /// Position of a column.
    pub fn index(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == column)
    }

    /// Whether the column is volatile.
    pub fn is_volatile(&self, column: &str) -> bool {
        self.volatile.contains(&column)
    }
}
