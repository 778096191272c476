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
}
