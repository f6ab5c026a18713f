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
        match read_trusted_artifact(&path) {
            // SAFETY: the bytes come from a regular file (not a link) that this user owns and
            // only this user can write, in a directory `open` accepted on the same terms, and
            // its name binds it to this component and this engine configuration: it was
            // written by `store` below, by this program.
            Ok(Some(bytes)) => match unsafe { Component::deserialize(engine, &bytes) } {
                Ok(loaded) => return Ok((loaded, CompiledFrom::Cache)),
                Err(error) => {
                    tracing::warn!(artifact = %path.display(), error = %format!("{error:#}"), "ignoring an unusable compiled component; compiling again");
                }
            },
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(artifact = %path.display(), error = %format!("{error:#}"), "not loading a compiled component this host cannot trust; compiling again");
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

/// The artifact at `path`, `None` when there is none, or why it is not trusted. It is opened
/// without following a symbolic link, and the opened file itself is checked (not the name, which
/// could be swapped between a check and the open): a regular file, owned by this user, not
/// writable by group or others.
fn read_trusted_artifact(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    use rustix::fs::OFlags;
    use std::io::Read as _;
    let opened = fs::OpenOptions::new()
        .read(true)
        // NONBLOCK: a FIFO planted under the name must not hang the start.
        .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32)
        .open(path);
    let mut file = match opened {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) if error.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            bail!("{} is a symbolic link: remove it", path.display())
        }
        Err(error) => return Err(error).with_context(|| format!("cannot open {}", path.display())),
    };
    let metadata = file.metadata().with_context(|| format!("cannot inspect {}", path.display()))?;
    let owner = rustix::process::geteuid().as_raw();
    if !metadata.is_file() {
        bail!("{} is not a regular file: remove it", path.display());
    }
    if metadata.uid() != owner {
        bail!("{} belongs to uid {}, not to this process (uid {owner}): remove it", path.display(), metadata.uid());
    }
    if metadata.permissions().mode() & 0o022 != 0 {
        bail!("{} is writable by group or others: remove it", path.display());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.read_to_end(&mut bytes).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some(bytes))
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

    fn engine() -> Engine {
        Engine::default()
    }

    /// A component with nothing in it: enough to compile and name an artifact.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn an_artifact_behind_a_symbolic_link_is_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::open(&dir.path().join("cache")).unwrap();
        let engine = engine();
        let (_, from) = cache.load_or_compile(&engine, EMPTY_COMPONENT).expect("compiled");
        assert_eq!(from, CompiledFrom::Source);
        let artifact = cache.dir.join(artifact_name(&engine, EMPTY_COMPONENT));
        let elsewhere = dir.path().join("planted.cwasm");
        fs::rename(&artifact, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &artifact).unwrap();

        let error = read_trusted_artifact(&artifact).expect_err("a link is refused").to_string();
        assert!(error.contains("symbolic link"), "{error}");
        let (_, from) = cache.load_or_compile(&engine, EMPTY_COMPONENT).expect("compiled again");
        assert_eq!(from, CompiledFrom::Source, "the linked artifact was not loaded");
        assert!(!fs::symlink_metadata(&artifact).unwrap().file_type().is_symlink(), "the link was replaced");
        let (_, from) = cache.load_or_compile(&engine, EMPTY_COMPONENT).expect("loaded");
        assert_eq!(from, CompiledFrom::Cache, "the artifact written in its place is used");
    }

    #[test]
    fn an_artifact_others_can_write_is_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::open(&dir.path().join("cache")).unwrap();
        let engine = engine();
        cache.load_or_compile(&engine, EMPTY_COMPONENT).expect("compiled");
        let artifact = cache.dir.join(artifact_name(&engine, EMPTY_COMPONENT));
        fs::set_permissions(&artifact, fs::Permissions::from_mode(0o666)).unwrap();
        let error = read_trusted_artifact(&artifact).expect_err("refused").to_string();
        assert!(error.contains("writable by group or others"), "{error}");
        assert_eq!(cache.load_or_compile(&engine, EMPTY_COMPONENT).unwrap().1, CompiledFrom::Source);
    }

    #[test]
    fn a_new_cache_directory_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("a/b/cache");
        ArtifactCache::open(&cache).expect("a new directory is accepted");
        assert_eq!(fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o700);
    }
}
