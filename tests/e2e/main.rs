//! End-to-end tests: the host binary (or its sandbox) driving the real connector or the probe
//! component against the fake Azure on loopback. Nothing here reaches any other address.

mod failures;
mod go_defects;
mod oracle;
mod probe;
mod sandbox;
mod support;
mod sync;
