//! Which connector component runs: the Azure one built into this binary, or a file.

use std::path::{Path, PathBuf};

use crate::sandbox::{ConnectorRuntime, RuntimeOptions, SandboxLimits, read_component_file};

/// The Azure connector, built for wasm32-wasip2 by `build.rs` and embedded at build time.
pub const AZURE_CONNECTOR: &[u8] = include_bytes!(env!("AZURE_CONNECTOR_WASM"));

/// The runtime of a one-off command (`sync`, `grant`, `revoke`), with compiled components kept
/// in the user's cache so the next run skips the compile.
pub fn load_runtime(component: Option<&Path>, limits: SandboxLimits) -> anyhow::Result<ConnectorRuntime> {
    let options = RuntimeOptions { limits, artifact_cache: user_cache_dir(), ..RuntimeOptions::default() };
    match component {
        Some(path) => ConnectorRuntime::load(&read_component_file(path)?, &options),
        None => ConnectorRuntime::load(AZURE_CONNECTOR, &options),
    }
}

/// `CONNECTOR_HOST_CACHE_DIR`, else `$XDG_CACHE_HOME/connector-host`, else
/// `$HOME/.cache/connector-host`; none when no variable says where (every run then compiles).
fn user_cache_dir() -> Option<PathBuf> {
    let set = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty()).map(PathBuf::from);
    set("CONNECTOR_HOST_CACHE_DIR")
        .or_else(|| set("XDG_CACHE_HOME").map(|dir| dir.join("connector-host")))
        .or_else(|| set("HOME").map(|home| home.join(".cache/connector-host")))
}
