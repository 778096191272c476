#![doc = include_str!("../README.md")]

mod any_sink;
mod crm_http;
pub mod http;
pub mod hubspot;
pub mod marketo;
pub mod outbound;
pub mod registry;
pub mod salesforce;
pub mod sink;
