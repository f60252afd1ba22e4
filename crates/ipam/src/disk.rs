//! [`DiskStore`]: reservations as files, in the reference host-local's exact layout.
//!
//! ```text
//! <dataDir>/<network>/lock                  flock'ed by every operation (mode 0750, empty)
//! <dataDir>/<network>/<ip>                  "<containerID>\r\n<ifname>" (mode 0600)
//! <dataDir>/<network>/last_reserved_ip.<N>  "<ip>" of range set N, no line break (mode 0600)
//! ```
//!
//! `<ip>` is the address's canonical text (dotted IPv4, RFC 5952 IPv6), which is what Go's
//! `net.IP.String` writes, so a node can switch between the reference binary and twill.

use std::cell::Cell;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::ErrorKind as IoKind;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::atomic_file;
use crate::config::check_network_name;
use crate::error::Error;
use crate::range::canonical;
use crate::store::{Owner, Reservation, Store};

const LOCK_FILE: &str = "lock";
const LAST_RESERVED_PREFIX: &str = "last_reserved_ip.";

/// Something odd found on disk and skipped; worth a log line, not a failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Warning {
    #[error("ignored unreadable reservation {}: {reason}", path.display())]
    UnreadableReservation { path: PathBuf, reason: String },
    #[error("ignored {}: not the canonical form of its address", path.display())]
    NonCanonicalName { path: PathBuf },
    #[error("ignored {}: content {content:?} is not an IP address", path.display())]
    BadLastReserved { path: PathBuf, content: String },
}

/// The reservations of one network on local disk, locked for as long as the value lives.
pub struct DiskStore {
    dir: PathBuf,
    // Reservations are opened relative to it: no walk of the whole path per file.
    dir_fd: File,
    // Dropping the file closes it, which releases the flock.
    _lock: File,
    warnings: Cell<Vec<Warning>>,
}

impl DiskStore {
    /// Open `<data_dir>/<network>` (created with mode 0755 if missing) and take the
    /// exclusive flock on its `lock` file, waiting for other holders (twill or reference).
    pub fn open(data_dir: &Path, network: &str) -> Result<DiskStore, Error> {
        check_network_name(network)?;
        let dir = data_dir.join(network);
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)
            .map_err(|e| Error::io("create directory", &dir, e))?;
        let lock = open_lock_file(&dir.join(LOCK_FILE))?;
        lock.lock().map_err(|e| Error::io("lock", dir.join(LOCK_FILE), e))?;
        let dir_fd = File::open(&dir).map_err(|e| Error::io("open directory", &dir, e))?;
        Ok(DiskStore { dir, dir_fd, _lock: lock, warnings: Cell::new(Vec::new()) })
    }

    /// The network's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Warnings gathered since the last call (unreadable files that were skipped).
    pub fn take_warnings(&mut self) -> Vec<Warning> {
        self.warnings.take()
    }

    fn warn(&self, warning: Warning) {
        let mut all = self.warnings.take();
        if !all.contains(&warning) {
            all.push(warning);
        }
        self.warnings.set(all);
    }

    fn ip_path(&self, ip: IpAddr) -> PathBuf {
        self.dir.join(canonical(ip).to_string())
    }

    fn last_reserved_name(range_set: usize) -> String {
        format!("{LAST_RESERVED_PREFIX}{range_set}")
    }

    /// The reservation behind one directory entry, or `None` if the entry is not one.
    fn read_entry(&self, entry: &fs::DirEntry) -> Option<Reservation> {
        let name = entry.file_name();
        let name = name.to_str()?;
        let ip: IpAddr = name.parse().ok()?;
        let path = entry.path();
        if canonical(ip).to_string() != name {
            self.warn(Warning::NonCanonicalName { path });
            return None;
        }
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            return None;
        }
        let owner = match read_small(&self.dir_fd, name) {
            Ok(bytes) => Owner::parse(&bytes),
            Err(e) if e.kind() == IoKind::NotFound => return None,
            Err(e) => Owner::Unreadable { reason: e.to_string() },
        };
        if let Owner::Unreadable { reason } = &owner {
            let reason = reason.clone();
            self.warn(Warning::UnreadableReservation { path, reason });
        }
        Some(Reservation { ip, owner })
    }
}

impl std::fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStore").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// The content of a small file in `dir`: `openat`, reads until one comes back short, close.
/// ADD reads every reservation of the network (the reference does too), so at hundreds of
/// pods this is most of host-local's time; `fs::read` would walk the whole path and `statx`
/// the file first. A read of a regular file returns less than asked only at its end.
fn read_small(dir: &File, name: &str) -> std::io::Result<Vec<u8>> {
    use nix::fcntl::{OFlag, openat};
    use nix::sys::stat::Mode;
    use std::io::Read;
    let fd = openat(dir, name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    let mut file = File::from(fd);
    let mut bytes = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        let n = match file.read(&mut buf) {
            Err(e) if e.kind() == IoKind::Interrupted => continue,
            other => other?,
        };
        bytes.extend_from_slice(&buf[..n]);
        if n < buf.len() {
            return Ok(bytes);
        }
    }
}

// The reference opens the lock read-only with O_CREAT and mode 0750; std cannot create
// without write access, so only a missing file is opened for writing.
fn open_lock_file(path: &Path) -> Result<File, Error> {
    match File::open(path) {
        Err(e) if e.kind() == IoKind::NotFound => {
            OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o750).open(path)
        }
        other => other,
    }
    .map_err(|e| Error::io("open", path, e))
}

impl Store for DiskStore {
    fn reserve(&mut self, ip: IpAddr, id: &str, ifname: &str) -> Result<bool, Error> {
        let path = self.ip_path(ip);
        match fs::symlink_metadata(&path) {
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == IoKind::NotFound => {}
            Err(e) => return Err(Error::io("stat", path, e)),
        }
        let content = Owner::file_content(id, ifname);
        atomic_file::write(&self.dir, &canonical(ip).to_string(), content.as_bytes(), 0o600)?;
        Ok(true)
    }

    // Not fsync'ed: if a crash undoes the unlink, the address merely stays reserved until GC.
    fn release(&mut self, ip: IpAddr) -> Result<bool, Error> {
        let path = self.ip_path(ip);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == IoKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("remove", path, e)),
        }
    }

    fn list(&self) -> Result<Vec<Reservation>, Error> {
        let entries = fs::read_dir(&self.dir).map_err(|e| Error::io("read directory", &self.dir, e))?;
        let mut all = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("read directory", &self.dir, e))?;
            all.extend(self.read_entry(&entry));
        }
        all.sort_by_key(|r| r.ip);
        Ok(all)
    }

    fn last_reserved(&self, range_set: usize) -> Result<Option<IpAddr>, Error> {
        let path = self.dir.join(DiskStore::last_reserved_name(range_set));
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == IoKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", path, e)),
        };
        let content = String::from_utf8_lossy(&bytes);
        match content.trim().parse::<IpAddr>() {
            Ok(ip) => Ok(Some(canonical(ip))),
            Err(_) => {
                let content = content.into_owned();
                self.warn(Warning::BadLastReserved { path, content });
                Ok(None)
            }
        }
    }

    /// Rewritten in place, as the reference does, not replaced: ext4 (`auto_da_alloc`) starts
    /// writing a file's data to disk when it replaces another by rename or is truncated to
    /// zero, which cost every ADD a block-device round trip. Overwriting from the start and
    /// then cutting to length does neither. A crash in between leaves a wrong or unreadable
    /// hint, which only moves or restarts the search (see [`Store::last_reserved`]).
    fn set_last_reserved(&mut self, range_set: usize, ip: IpAddr) -> Result<(), Error> {
        use std::io::Write;
        let path = self.dir.join(DiskStore::last_reserved_name(range_set));
        let content = canonical(ip).to_string();
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        file.write_all(content.as_bytes())
            .and_then(|()| file.set_len(content.len() as u64))
            .map_err(|e| Error::io("write", &path, e))
    }

    fn discard_incomplete(&mut self) -> Result<usize, Error> {
        let entries = fs::read_dir(&self.dir).map_err(|e| Error::io("read directory", &self.dir, e))?;
        let mut removed = 0;
        for entry in entries.flatten() {
            let is_temp = entry.file_name().to_str().is_some_and(atomic_file::is_temp);
            // Writers hold the lock we hold, so any temp file now is from a dead process.
            if is_temp && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}
