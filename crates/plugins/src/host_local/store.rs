//! The data dir: one locked store per operation, and whether the dir is usable at all.

use std::io::ErrorKind as IoKind;
use std::path::Path;

use cni_spec::{Error, ErrorCode};
use ipam::{DiskStore, IpamConfig, MemoryStore};
use nix::unistd::{AccessFlags, access};

use super::conf::StoreConf;
use super::error::to_cni;

/// Runs `op` on the network's reservations, holding the data dir's lock (shared with the
/// reference binary) only that long. Files the store skipped are reported on stderr, which
/// runtimes log.
pub fn with_store<T>(
    at: &StoreConf,
    op: impl FnOnce(&mut DiskStore) -> Result<T, ipam::Error>,
) -> Result<T, Error> {
    let mut store = DiskStore::open(&at.data_dir, &at.network).map_err(to_cni)?;
    let outcome = op(&mut store);
    let warnings = store.take_warnings();
    drop(store);
    for warning in warnings {
        eprintln!("host-local: network {}: {warning}", at.network);
    }
    outcome.map_err(to_cni)
}

/// STATUS: every range set still has an address ADD could hand out; when one does not, the
/// plugin "is not available" (code 50) until some DEL frees an address. A network without
/// a directory has nothing reserved; nothing is created to find out.
pub fn check_free(at: &StoreConf, conf: &IpamConfig) -> Result<(), Error> {
    let outcome = if has_reservations_dir(at) {
        with_store(at, |store| Ok(ipam::check_available(store, conf)))?
    } else {
        ipam::check_available(&MemoryStore::new(), conf)
    };
    outcome.map_err(|e| match e.kind() {
        ipam::ErrorKind::Exhausted => {
            Error::new(ErrorCode::NotAvailable, format!("host-local network {}: {e}", at.network))
                .with_details("ADD cannot be served until an address is released")
        }
        _ => to_cni(e),
    })
}

/// Whether the network has a directory yet; without one there is nothing to free.
pub fn has_reservations_dir(at: &StoreConf) -> bool {
    at.network_dir().is_dir()
}

/// STATUS: ADD can be served when `<dataDir>/<network>` is a writable directory or can be
/// created, i.e. its nearest existing ancestor is one. Checked without creating anything.
pub fn check_usable(at: &StoreConf) -> Result<(), Error> {
    let dir = at.network_dir();
    let unusable = |why: String| {
        Error::new(ErrorCode::NotAvailable, format!("host-local data dir {} is not usable", dir.display()))
            .with_details(why)
    };
    let existing = nearest_existing(&dir).map_err(&unusable)?;
    if !existing.is_dir() {
        return Err(unusable(format!("{} is not a directory", existing.display())));
    }
    access(existing, AccessFlags::W_OK | AccessFlags::X_OK)
        .map_err(|e| unusable(format!("{} is not writable: {}", existing.display(), e.desc())))
}

/// The first of `dir` and its ancestors that exists.
fn nearest_existing(dir: &Path) -> Result<&Path, String> {
    for candidate in dir.ancestors() {
        let candidate = if candidate.as_os_str().is_empty() { Path::new(".") } else { candidate };
        match candidate.metadata() {
            Ok(_) => return Ok(candidate),
            // A file in the way shows as ENOTDIR below it; it is found one level up.
            Err(e) if matches!(e.kind(), IoKind::NotFound | IoKind::NotADirectory) => continue,
            Err(e) => return Err(format!("{}: {e}", candidate.display())),
        }
    }
    Err(format!("no ancestor of {} exists", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("twill-hl-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn usable_when_missing_below_a_directory() {
        let base = temp("ok");
        let at = StoreConf { data_dir: base.join("a/b"), network: "net".into() };
        check_usable(&at).unwrap();
        assert!(!base.join("a").exists(), "STATUS creates nothing");
        assert!(!has_reservations_dir(&at));
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn a_file_in_the_way_is_code_50() {
        let base = temp("file");
        std::fs::write(base.join("file"), b"").unwrap();
        let at = StoreConf { data_dir: base.join("file/sub"), network: "net".into() };
        let err = check_usable(&at).unwrap_err();
        assert_eq!(err.code.code(), 50);
        assert!(err.details.contains("is not a directory"), "{err}");
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn store_is_created_and_used() {
        let base = temp("open");
        let at = StoreConf { data_dir: base.clone(), network: "net".into() };
        let freed = with_store(&at, |s| ipam::release(s, "c1", "eth0")).unwrap();
        assert!(freed.is_empty());
        assert!(has_reservations_dir(&at));
        let err = with_store(&at, |s| ipam::check(s, "c1", "eth0", &[])).unwrap_err();
        assert_eq!(err.code.code(), super::super::error::NOT_RESERVED);
        std::fs::remove_dir_all(base).unwrap();
    }
}
