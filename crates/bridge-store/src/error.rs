//! What went wrong in the store, and the one way a driver error gets its context.

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database URL cannot be used.
    #[error("invalid database URL: {0}")]
    Url(String),
    /// The database could not be reached or refused the connection.
    #[error("cannot connect to {target}")]
    Connect {
        /// The database URL without its password.
        target: String,
        /// The driver's error.
        #[source]
        source: Driver,
    },
    /// A statement failed.
    #[error("database error while {op}")]
    Sqlx {
        /// What the store was doing.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: Driver,
    },
    /// A secret could not be sealed or opened.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// A stored value could not be read back.
    #[error("stored {what} is corrupt")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A document column was handed text that is not JSON.
    #[error("{table}.{column} is a JSON column but was given text that is not JSON")]
    NotJson {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// What the parser found.
        #[source]
        source: serde_json::Error,
    },
}

/// Store result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches what the store was doing to a driver error.
pub trait Op<T> {
    /// Names the operation.
    fn op(self, op: &'static str) -> Result<T>;
}

impl<T> Op<T> for std::result::Result<T, sqlx::Error> {
    fn op(self, op: &'static str) -> Result<T> {
        self.map_err(|e| Error::Sqlx {
            op,
            source: Driver(e),
        })
    }
}

/// A driver error, said once. sqlx's messages already embed their cause
/// (`error communicating with database: Connection refused`) and also return it as their
/// source, so a printed chain said everything twice; this one ends the chain at the driver's
/// own message.
#[derive(Debug)]
pub struct Driver(pub sqlx::Error);

impl std::fmt::Display for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Driver {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_driver_error_is_said_once_in_a_printed_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let e = Error::Connect {
            target: "postgres://db.example:5432/app".into(),
            source: Driver(sqlx::Error::Io(io)),
        };
        // What `{:#}` of an anyhow error prints: each message in the chain, joined by ": ".
        let mut chain = e.to_string();
        let mut next = std::error::Error::source(&e);
        while let Some(s) = next {
            chain.push_str(&format!(": {s}"));
            next = s.source();
        }
        assert_eq!(
            chain,
            "cannot connect to postgres://db.example:5432/app: error communicating with \
             database: Connection refused"
        );
        assert_eq!(chain.matches("Connection refused").count(), 1);
    }
}

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The master key text is not 64 hex digits.
    #[error(
        "the master key must be 64 hex digits (32 bytes); make one with `driftbridge keys generate`"
    )]
    BadMasterKey,
    /// A data key is sealed under a master key this process does not have.
    #[error(
        "org {org}'s data key is sealed under master key {key_id}, which is not configured \
         (set it as the master key or in secrets.old_master_keys)"
    )]
    UnknownMasterKey {
        /// Org.
        org: i64,
        /// The missing key's id.
        key_id: String,
    },
    /// A ciphertext did not authenticate: tampered, corrupt, or moved from another row.
    #[error(
        "org {org}'s {what} does not open: it was altered or moved from another tenant or kind; \
         refusing to use it"
    )]
    Tampered {
        /// Org.
        org: i64,
        /// Which secret (or "data key").
        what: String,
    },
    /// The system random generator failed.
    #[error("the system random number generator failed")]
    Random,
}
