//! The fake's behaviour, one test per Azure behaviour, over real HTTP.

mod activity_log;
mod advanced_queries;
mod audit_log;
mod client;
mod delta;
mod directory_reads;
mod examples;
mod faults;
mod paging;
mod rbac;
mod tokens;
mod writes;
