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
