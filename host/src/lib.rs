//! connector-host: runs an identity-governance connector component in a wasmtime sandbox.
//!
//! The host owns everything a connector must not: credentials and tokens, the network
//! (an allow-list per tenant), the clock budget and memory of each call, and the output.
//! The component only answers paged questions; see `wit/connector.wit`.

pub mod c1z;
pub mod cli;
pub mod clock;
pub mod cloud;
pub mod component;
pub mod connector_error;
pub mod credentials;
pub mod demo;
pub mod export;
pub mod log_text;
pub mod memory_budget;
pub mod outbound;
pub mod provision;
pub mod run;
pub mod sandbox;
pub mod serve;
pub mod store;
pub mod sync;
pub mod tenant;
