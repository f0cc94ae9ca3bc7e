//! File handling the disk buffer and the spool share: files only this
//! service may read, durable renames and removals, and the start-up check
//! that a directory setting can be written.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Creates a new file (never an existing one), readable by this user
/// only: points may carry labels the user would not show others.
pub fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Syncs a directory, so that a creation, rename or removal in it is
/// durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What the start-up check found of a directory the service may write.
#[derive(Debug, PartialEq, Eq)]
pub enum Room {
    Available,
    /// The disk (or the user's quota) is full: not the configuration's
    /// fault, and delivering what the directory holds frees room.
    Full,
}

/// Whether an error means the disk or the quota is full.
pub fn is_disk_full(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EDQUOT)
    )
}

/// Checks at start that the service can keep files in `dir` (creating it),
/// so that a directory it may not write is a configuration error, not data
/// lost later; a full disk is only reported. The probe's name matches
/// neither segments nor spool files.
pub fn check_writable(dir: &Path) -> io::Result<Room> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".probe-{}", std::process::id()));
    let _ = std::fs::remove_file(&probe);
    let written = create_private(&probe)
        .and_then(|mut file| file.write_all(b"probe").and_then(|()| file.sync_data()));
    let removed = match std::fs::remove_file(&probe) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    };
    match written.and(removed) {
        Ok(()) => Ok(Room::Available),
        Err(error) if is_disk_full(&error) => Ok(Room::Full),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_that_cannot_hold_files_is_refused_and_the_probe_leaves_nothing() {
        let dir = std::env::temp_dir().join(format!("dss-files-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let blocked = dir.join("a-file-not-a-directory");
        std::fs::write(&blocked, "").unwrap();
        assert!(check_writable(&blocked).is_err());
        assert_eq!(check_writable(&dir.join("made")).unwrap(), Room::Available);
        assert_eq!(std::fs::read_dir(dir.join("made")).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
