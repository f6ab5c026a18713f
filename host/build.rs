//! Builds the Azure connector component (`connector/`, a separate workspace) for
//! wasm32-wasip2 and hands its path to the host, which embeds it.
//!
//! Set `AZURE_CONNECTOR_WASM` to a prebuilt component to skip the nested build (container
//! builds do that in their own stage).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=AZURE_CONNECTOR_WASM");
    if let Ok(prebuilt) = std::env::var("AZURE_CONNECTOR_WASM") {
        println!("cargo:rerun-if-changed={prebuilt}");
        println!("cargo:rustc-env=AZURE_CONNECTOR_WASM={prebuilt}");
        return;
    }
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("host/ lives in the workspace root").to_path_buf();
    let connector = root.join("connector");
    for watched in ["src", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", connector.join(watched).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("wit").display());

    let target_dir = workspace_target_dir().join("connector");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(&connector)
        .args(["build", "--release", "--locked", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target_dir);
    // The outer build's settings are for the host, not for a wasm guest.
    for variable in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
    ] {
        build.env_remove(variable);
    }
    let status = build.status().expect("cannot run cargo to build the connector component");
    if !status.success() {
        panic!(
            "building the connector component failed (see above). If the wasm target is missing, run: rustup target add wasm32-wasip2"
        );
    }
    let wasm = target_dir.join("wasm32-wasip2/release/azure_connector.wasm");
    assert!(wasm.is_file(), "the connector build produced no {}", wasm.display());
    println!("cargo:rustc-env=AZURE_CONNECTOR_WASM={}", wasm.display());
}

/// `<target>/<profile>/build/<package>-<hash>/out` → `<target>`.
fn workspace_target_dir() -> PathBuf {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    out_dir.ancestors().nth(4).map(Path::to_path_buf).unwrap_or(out_dir)
}
