//! Crash-safe file replacement: temp file in the same directory, then rename.
//!
//! The reference writes reservation files in place (`O_EXCL` create, then write), so a crash
//! in between leaves an empty file that blocks its address forever. Here a name only ever
//! appears with its full content to every process, whenever the writer dies.
//!
//! Nothing is fsync'ed: only a crash of the whole node could lose or empty a file, and that
//! kills every pod whose addresses the files hold, so GC frees them all anyway (an empty or
//! unreadable reservation is freed by GC like any stale one; a bad `last_reserved_ip` only
//! restarts the search). Syncing cost a journal commit on every ADD — the largest single
//! wait of a pod's ADD on a busy disk (issue 15).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Error;

/// Names of temp files start with this; a dot-name never parses as an IP address, so a
/// leftover is invisible to the reference's and twill's listings alike.
pub(crate) const TEMP_PREFIX: &str = ".twill-tmp.";

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Atomically create or replace `dir/name` with `content` and permission bits `mode`.
///
/// Replacing is the caller's decision: reservations are only written after checking under
/// the store lock that the name is free, and every writer (twill or the reference) holds
/// that lock.
pub(crate) fn write(dir: &Path, name: &str, content: &[u8], mode: u32) -> Result<(), Error> {
    let temp = temp_path(dir, name);
    let result = write_temp(&temp, content, mode).and_then(|()| {
        let target = dir.join(name);
        fs::rename(&temp, &target).map_err(|e| Error::io("rename into place", target, e))
    });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

fn temp_path(dir: &Path, name: &str) -> PathBuf {
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{TEMP_PREFIX}{name}.{}.{seq}", std::process::id()))
}

fn write_temp(path: &Path, content: &[u8], mode: u32) -> Result<(), Error> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    file.write_all(content).map_err(|e| Error::io("write", path, e))
}

/// Whether `name` is one of our temp files.
pub(crate) fn is_temp(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A scratch directory removed on drop, also when the test fails.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("twill-ipam-atomic-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn names(&self) -> Vec<std::ffi::OsString> {
            fs::read_dir(&self.0).unwrap().map(|e| e.unwrap().file_name()).collect()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn writes_replaces_and_leaves_no_temp() {
        let dir = Scratch::new("write");
        write(&dir.0, "f", b"one", 0o600).unwrap();
        write(&dir.0, "f", b"two", 0o600).unwrap();
        assert_eq!(fs::read(dir.0.join("f")).unwrap(), b"two");
        let mode = fs::metadata(dir.0.join("f")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        assert_eq!(dir.names(), ["f"]);
    }

    #[test]
    fn failure_cleans_up_and_names_the_path() {
        let dir = Scratch::new("fail");
        fs::create_dir(dir.0.join("taken")).unwrap();
        let err = write(&dir.0, "taken", b"x", 0o600).unwrap_err();
        assert!(err.to_string().contains("taken"), "{err}");
        assert_eq!(dir.names(), ["taken"]);
    }

    #[test]
    fn temp_names_are_recognised_and_never_parse_as_addresses() {
        let name = temp_path(Path::new("/d"), "10.0.0.1").file_name().unwrap().to_str().unwrap().to_string();
        assert!(is_temp(&name));
        assert!(name.parse::<std::net::IpAddr>().is_err());
        assert!(!is_temp("10.0.0.1") && !is_temp("lock") && !is_temp("last_reserved_ip.0"));
    }
}
