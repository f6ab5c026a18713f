//! End-to-end tests: the host binary (or its sandbox) driving the real connector or the probe
//! component against the fake Azure on loopback. Nothing here reaches any other address.

mod c1z;
mod clouds;
mod deployment;
mod failures;
mod gaps;
mod go_defects;
mod hostile;
mod identity;
mod incremental;
mod listing_checks;
mod memory;
mod ops_hardening;
mod oracle;
mod private_ca;
mod probe;
mod provisioning;
mod proxy;
mod resume;
mod sandbox;
mod serve;
mod serve_support;
mod support;
mod sync;
mod trust;
