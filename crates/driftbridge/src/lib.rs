//! The pieces of the `driftbridge` binary, as a library so the integration tests can start
//! them in-process: configuration, `serve`, the demo, operator commands and benchmarks.

pub mod airbyte;
pub mod bench;
pub mod bench_crm;
pub mod bench_export;
pub mod bench_ingest;
pub mod config;
pub mod demo;
pub mod export_cmd;
pub mod ops;
pub mod progress;
pub mod serve;
