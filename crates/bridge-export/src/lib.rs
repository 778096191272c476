#![doc = include_str!("../README.md")]

pub mod airbyte;
pub mod cells;
mod destination;
mod dir_lock;
pub mod engine;
mod error;
mod files;
pub mod lease;
mod parquet_file;
mod part;
mod purge;
pub mod rows;
pub mod runs;
mod staging;
mod target;
#[cfg(test)]
mod test_rows;

pub use destination::Destination;
pub use engine::{
    ContactRef, DAY_MS, ExportDestination, ExportOptions, Mode, Progress, Summary, eta,
    parse_contact_list, parse_since, parse_time, run,
};
pub use error::{Error, Result};
pub use files::{FileFormat, read_table};
pub use purge::{Purged, purge, purge_attachments};
pub use target::Target;
