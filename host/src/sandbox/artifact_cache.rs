//! Compiled components kept on disk, so a host (re)start loads machine code in milliseconds
//! instead of compiling for seconds.
//!
//! An artifact is named by the SHA-256 of the component and of the engine's compatibility hash
//! (wasmtime version, target, compiler settings): a new component or a different engine never
//! picks up an old artifact. Loading an artifact runs its machine code, so only files this
//! process wrote into a directory it owns are trusted; see [`ArtifactCache::open`].

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where a runtime's machine code came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompiledFrom {
    /// Compiled from the component in this process.
    Source,
    /// Loaded from an artifact this host wrote earlier.
    Cache,
}

pub struct ArtifactCache {
    dir: PathBuf,
}

impl ArtifactCache {
    /// Opens (creating it, mode 0700) a cache directory. A directory owned by another user or
    /// writable by group or others is refused: anyone who can write there could plant machine
    /// code that the host would run outside the sandbox.
    pub fn open(dir: &Path) -> anyhow::Result<ArtifactCache> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create the cache directory {}", dir.display()))?;
        let metadata = fs::metadata(dir).with_context(|| format!("cannot inspect {}", dir.display()))?;
        let owner = rustix::process::geteuid().as_raw();
        if metadata.uid() != owner {
            bail!(
                "{} belongs to uid {}, not to this process (uid {owner}): give a directory this user owns with --cache-dir",
                dir.display(),
                metadata.uid()
            );
        }
        if metadata.permissions().mode() & 0o022 != 0 {
            bail!("{} is writable by group or others: run chmod 700 on it, or give another --cache-dir", dir.display());
        }
        Ok(ArtifactCache { dir: dir.to_path_buf() })
    }

    /// The compiled component, from the cache when a valid artifact is there, else compiled and
    /// stored. Failing to store is logged and otherwise ignored.
    pub fn load_or_compile(&self, engine: &Engine, component: &[u8]) -> anyhow::Result<(Component, CompiledFrom)> {
        let path = self.dir.join(artifact_name(engine, component));
        if path.is_file() {
            // SAFETY: `open` accepted the directory only if this user alone can write to it,
            // and the file's name binds it to this component and this engine configuration:
            // it was written by `store` below, by this program.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(loaded) => return Ok((loaded, CompiledFrom::Cache)),
                Err(error) => {
                    tracing::warn!(artifact = %path.display(), error = %format!("{error:#}"), "ignoring an unusable compiled component; compiling again");
                }
            }
        }
        let artifact = engine
            .precompile_component(component)
            .map_err(|err| anyhow!("the connector component does not compile: {err:#}"))?;
        if let Err(error) = self.store(&path, &artifact) {
            tracing::warn!(artifact = %path.display(), error = %format!("{error:#}"), "cannot keep the compiled component; the next start compiles again");
        }
        // SAFETY: `artifact` was produced by `precompile_component` of this very engine just now.
        let compiled = unsafe { Component::deserialize(engine, &artifact) }
            .map_err(|err| anyhow!("cannot load the component just compiled: {err:#}"))?;
        Ok((compiled, CompiledFrom::Source))
    }

    /// Writes beside the final name and renames, so a reader never maps a half-written file and
    /// a running host keeps its mapping of the file it replaced.
    fn store(&self, path: &Path, artifact: &[u8]) -> anyhow::Result<()> {
        let temporary = path.with_extension(format!("{}.partial", std::process::id()));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(|| format!("cannot create {}", temporary.display()))?;
        let written = file.write_all(artifact).and_then(|()| file.sync_all());
        if let Err(error) = written.and_then(|()| fs::rename(&temporary, path)) {
            let _ = fs::remove_file(&temporary);
            return Err(error).with_context(|| format!("cannot write {}", path.display()));
        }
        Ok(())
    }
}

/// Feeds `Hash` output into SHA-256, so the engine's compatibility hash becomes a stable name
/// (`DefaultHasher` is not guaranteed to stay the same across Rust releases).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes([digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7]])
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn artifact_name(engine: &Engine, component: &[u8]) -> String {
    let mut engine_hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut engine_hasher);
    let engine_digest = engine_hasher.0.finalize();
    let component_digest = Sha256::digest(component);
    format!("{}-{}.cwasm", hex(&component_digest), hex(&engine_digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
        let error = ArtifactCache::open(&shared).err().expect("a world-writable cache is refused").to_string();
        assert!(error.contains("chmod 700"), "{error}");
    }

    #[test]
    fn a_new_cache_directory_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("a/b/cache");
        ArtifactCache::open(&cache).expect("a new directory is accepted");
        assert_eq!(fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o700);
    }
}
