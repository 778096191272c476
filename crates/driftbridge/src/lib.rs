//! The pieces of the `driftbridge` binary, as a library so the integration tests can start
//! them in-process: configuration, `serve`, the demo, operator commands and benchmarks. No
//! SQL here: what the commands read back comes from `bridge_store`.

pub mod airbyte;
pub mod bench;
pub mod config;
mod config_keys;
pub mod demo;
mod demo_widget;
pub mod drift_access;
pub mod export_cmd;
pub mod gdpr_cmd;
pub mod jobs_cmd;
pub mod ops;
pub mod progress;
pub mod report_cmd;
pub mod serve;
pub mod sim_sinks;
pub mod tenants_cmd;
