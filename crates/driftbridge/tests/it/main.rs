//! driftbridge end to end: the real gateway, workers, simulator and databases.

mod airbyte;
mod analytics;
mod browser;
mod cli;
mod console;
mod crm;
mod deploy;
mod disconnects;
mod erasure_crash;
mod export;
mod fairness;
mod gateway;
mod helpers;
mod meetings;
mod ops_cli;
mod parity;
mod pipeline;
mod privacy;
mod processes;
mod retention;
mod tenants;
mod widget;
