//! What operators read and what their actions leave behind: events found by type, org,
//! conversation and time; counts over time for the console's charts; the admin audit; the
//! record of export and sync runs; one conversation as the console shows it.

pub mod audit;
pub mod conversation;
pub mod events;
pub mod runs;
pub mod series;
