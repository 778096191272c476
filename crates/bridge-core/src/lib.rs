#![doc = include_str!("../README.md")]

pub mod analytics;
pub mod conversation;
pub mod drift;
pub mod failure;
pub mod group_commit;
pub mod ingest;
pub mod jobs;
pub mod metrics;
pub mod reconnect;
pub mod retention;
pub mod schedule;
pub mod sink_secrets;
pub mod tenants;
pub mod widget;
pub mod widget_intake;
