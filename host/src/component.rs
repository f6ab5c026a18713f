//! Which connector component runs: the Azure one built into this binary, or a file.

use std::path::Path;

use crate::sandbox::{ConnectorRuntime, SandboxLimits, read_component_file};

/// The Azure connector, built for wasm32-wasip2 by `build.rs` and embedded at build time.
pub const AZURE_CONNECTOR: &[u8] = include_bytes!(env!("AZURE_CONNECTOR_WASM"));

pub fn load_runtime(component: Option<&Path>, limits: SandboxLimits) -> anyhow::Result<ConnectorRuntime> {
    match component {
        Some(path) => ConnectorRuntime::new(&read_component_file(path)?, limits),
        None => ConnectorRuntime::new(AZURE_CONNECTOR, limits),
    }
}
