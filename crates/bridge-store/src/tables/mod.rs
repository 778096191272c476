//! The exported tables as data: every table's columns, key and parent, and the one mapping
//! from Drift objects to rows. The SQL store, the file destinations and the Airbyte streams
//! all write these rows, so a table has the same columns everywhere (docs/SCHEMA.md); a test
//! checks them against the migrations.
//!
//! Child tables (participants, tags, buttons, custom properties, goals) hold a set that belongs
//! to one parent row: a batch that carries the parent carries its complete child set.

mod batch;
mod defs;
mod facts;
mod rows;
mod schema;
pub mod sql;

pub use batch::{Batch, MAX_INSTANT_MS, MIN_INSTANT_MS, Row, Value, without_nul};
pub use defs::{TABLES, table};
pub use facts::{Facts, Outcomes};
pub use rows::{json_cell, json_without_nul, meeting_key};
pub use schema::{Column, ColumnType, SYNCED_AT, Storage, Stream, Table};
