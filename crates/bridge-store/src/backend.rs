//! Which database is behind a store, and its connection types.

use sqlx::Any;

/// A connection (or a transaction, which derefs to one).
pub type Conn = sqlx::AnyConnection;
/// A transaction.
pub type Tx = sqlx::Transaction<'static, Any>;

/// Which database is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default.
    Sqlite,
    /// The scale-out backend.
    Postgres,
}

impl Backend {
    /// The backend behind a connection (or a transaction).
    pub fn of(conn: &Conn) -> Backend {
        if conn.backend_name() == "PostgreSQL" {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// The suffix of a subquery selecting rows to write that takes them without waiting on
    /// one another transaction holds (a later statement takes those). Empty on SQLite, which
    /// has one writer at a time, so its transactions never wait on each other's rows.
    pub fn skip_locked(self) -> &'static str {
        match self {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        }
    }

    /// The suffix of a subquery selecting rows by `id` that locks them in id order, as the
    /// writers that take rows one by one do, so two such writers cannot deadlock. Empty on
    /// SQLite (one writer at a time).
    pub fn locked_in_id_order(self) -> &'static str {
        match self {
            Backend::Postgres => " ORDER BY id FOR UPDATE",
            Backend::Sqlite => "",
        }
    }
}
