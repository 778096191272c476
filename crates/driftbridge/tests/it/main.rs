//! driftbridge end to end: the real gateway, workers, simulator and databases.

mod export;
mod gateway;
mod helpers;
mod pipeline;
mod processes;
