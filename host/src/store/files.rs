//! The files of the store: readable only by the service's user, and durable once put in place.
//!
//! A snapshot lists who can do what in a tenant, an inventory an attacker would like to read,
//! so snapshots and partial files are created 0600 and their directories 0700, whatever the
//! umask. Mode bits given at creation only apply to new files, so an existing file or directory
//! (from an older version, or a copy) is tightened too. SQLite creates its `-wal` and `-shm`
//! companions with the mode of the database file, so they follow.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

const PRIVATE_FILE: u32 = 0o600;
const PRIVATE_DIR: u32 = 0o700;

/// Creates `path` (and missing parents) 0700; an existing directory open to group or others is
/// narrowed to 0700. A directory this user cannot narrow (e.g. a mounted volume's root that
/// another user owns) is left as it is, with a warning: its files are private anyway.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(PRIVATE_DIR).create(path)?;
    let mode = fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0
        && let Err(error) = fs::set_permissions(path, fs::Permissions::from_mode(PRIVATE_DIR))
    {
        tracing::warn!(directory = %path.display(), mode = format!("{:o}", mode & 0o777), %error, "cannot make the directory private (chmod 700); its files are 0600 all the same");
    }
    Ok(())
}

/// Opens `path` for writing, created 0600 if absent, narrowed to 0600 if it exists, not
/// truncated (SQLite takes an empty file for a new database).
pub fn open_private_file(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new().write(true).create(true).truncate(false).mode(PRIVATE_FILE).open(path)?;
    make_private(&file)?;
    Ok(file)
}

/// Narrows an open file to 0600 unless it already is.
pub fn make_private(file: &File) -> io::Result<()> {
    if file.metadata()?.permissions().mode() & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(PRIVATE_FILE))?;
    }
    Ok(())
}

/// Renames `from` over `to`, then flushes their directory: until the directory is on disk, a
/// crash can bring back the old name (the previous snapshot) or neither.
pub fn rename_durably(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)?;
    let directory = to.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(directory)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn data_directories_are_created_0700_and_an_open_one_is_narrowed() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("data/tenant");
        create_private_dir(&new).unwrap();
        assert_eq!(mode(&new), 0o700);
        assert_eq!(mode(&dir.path().join("data")), 0o700, "missing parents too");

        let open = dir.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&open).unwrap();
        assert_eq!(mode(&open), 0o700);
    }

    #[test]
    fn a_private_file_is_created_0600_and_an_existing_one_is_narrowed_without_losing_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new");
        open_private_file(&new).unwrap();
        assert_eq!(mode(&new), 0o600);

        let existing = dir.path().join("existing");
        fs::write(&existing, "rows").unwrap();
        fs::set_permissions(&existing, fs::Permissions::from_mode(0o644)).unwrap();
        open_private_file(&existing).unwrap();
        assert_eq!(mode(&existing), 0o600);
        assert_eq!(fs::read_to_string(&existing).unwrap(), "rows");
    }

    #[test]
    fn rename_durably_replaces_the_target_and_syncs_its_directory_without_error() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("partial"), dir.path().join("sync.db"));
        fs::write(&from, "new").unwrap();
        fs::write(&to, "old").unwrap();
        rename_durably(&from, &to).expect("the rename and the directory's fsync succeed");
        assert_eq!(fs::read_to_string(&to).unwrap(), "new");
        assert!(!from.exists());
    }
}
