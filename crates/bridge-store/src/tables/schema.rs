//! What a table is: its columns and their types, its key, its parent, and the stream that
//! fills it.

/// A column's type: 64-bit integers (ids, epoch milliseconds, 0/1 booleans) or text (strings,
/// JSON documents).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// `BIGINT`.
    Int,
    /// `TEXT`.
    Text,
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

pub(super) const fn int(name: &'static str) -> Column {
    Column {
        name,
        ty: ColumnType::Int,
        nullable: false,
    }
}
pub(super) const fn int_null(name: &'static str) -> Column {
    Column {
        name,
        ty: ColumnType::Int,
        nullable: true,
    }
}
pub(super) const fn text(name: &'static str) -> Column {
    Column {
        name,
        ty: ColumnType::Text,
        nullable: false,
    }
}
pub(super) const fn text_null(name: &'static str) -> Column {
    Column {
        name,
        ty: ColumnType::Text,
        nullable: true,
    }
}

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
