//! What went wrong in a destination.

use std::path::PathBuf;

/// What went wrong in a destination.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `--to` value is not one of the accepted forms.
    #[error(
        "unknown destination {0:?}: use sqlite:PATH, postgres://..., jsonl:DIR, csv:DIR or parquet:DIR"
    )]
    Target(String),
    /// The SQL store failed.
    #[error(transparent)]
    Store(#[from] bridge_store::Error),
    /// A file could not be read or written.
    #[error("{op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Which file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another run is writing the directory.
    #[error(
        "another driftbridge run{} is writing {}; wait for it to end, or stop it (it holds {})",
        holder.map(|p| format!(" (process {p})")).unwrap_or_default(),
        dir.display(),
        dir.join(crate::dir_lock::LOCK).display()
    )]
    Busy {
        /// The directory.
        dir: PathBuf,
        /// The process that holds it, as its lock file says.
        holder: Option<u32>,
    },
    /// A file we wrote could not be read back, or one in the directory is not ours.
    #[error("{path} is not a readable driftbridge file: {message}")]
    Corrupt {
        /// Which file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Destination result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
