//! Network namespaces: the only place in twill that calls `setns(2)`.
//!
//! A [`NetNs`] holds an open file descriptor of a network namespace for as long as it lives, so
//! the namespace cannot vanish under an operation. Work that must happen *inside* a namespace
//! (opening a netlink socket, writing `/proc/sys/net`, binding a socket) runs through
//! [`NetNs::run`], which starts a fresh OS thread, moves that thread into the namespace, runs the
//! closure and lets the thread exit. The calling thread never changes namespace, so nothing can
//! leak a switched thread into a pool or an async runtime.
//!
//! Named namespaces ([`create_named`], [`delete_named`]) use iproute2's layout — a bind mount at
//! `/run/netns/NAME` on a shared `/run/netns` — so they show up in `ip netns list` and
//! namespaces made by `ip netns add` can be opened here.

mod child;
mod error;
mod named;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::sched::{CloneFlags, setns};
use nix::sys::stat::{Mode, fstat};
use nix::sys::statfs::{NSFS_MAGIC, fstatfs};

pub use error::{Error, OsError};
pub use named::{NETNS_RUN_DIR, create_named, delete_named, named_path};

/// `NS_GET_NSTYPE` from `<linux/nsfs.h>`: `_IO(0xb7, 0x3)`.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// An open network namespace.
#[derive(Debug)]
pub struct NetNs {
    fd: OwnedFd,
    path: PathBuf,
}

impl NetNs {
    /// Opens the network namespace file at `path` (`/run/netns/NAME`, `/proc/PID/ns/net`, ...)
    /// and checks that it really is a network namespace.
    pub fn open(path: impl AsRef<Path>) -> Result<NetNs, Error> {
        let path = path.as_ref().to_path_buf();
        let fd = open(&path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| Error::Io {
            op: "open",
            path: path.clone(),
            source: e.into(),
        })?;
        validate(&fd, &path)?;
        Ok(NetNs { fd, path })
    }

    /// The network namespace of the calling thread.
    pub fn current() -> Result<NetNs, Error> {
        NetNs::open("/proc/thread-self/ns/net")
    }

    /// The path this namespace was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The namespace's file descriptor, e.g. for `IFLA_NET_NS_FD`.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// True when both handles refer to the same namespace (same `st_dev`/`st_ino`).
    pub fn same_as(&self, other: &NetNs) -> Result<bool, Error> {
        Ok(self.identity()? == other.identity()?)
    }

    /// The `(st_dev, st_ino)` pair identifying this namespace.
    pub fn identity(&self) -> Result<(u64, u64), Error> {
        let st = fstat(&self.fd).map_err(|e| Error::Io {
            op: "stat",
            path: self.path.clone(),
            source: e.into(),
        })?;
        Ok((st.st_dev, st.st_ino))
    }

    /// Whether the calling thread is in this namespace (same nsfs inode).
    fn is_the_callers(&self) -> bool {
        match (nix::sys::stat::stat("/proc/thread-self/ns/net"), self.identity()) {
            (Ok(here), Ok(mine)) => (here.st_dev, here.st_ino) == mine,
            _ => false,
        }
    }

    /// Runs `f` on a fresh OS thread that has entered this namespace; the thread exits
    /// afterwards, so a switched thread is never reused. A panic in `f` is resumed on the
    /// calling thread. When the calling thread is already in this namespace (a plugin's own
    /// host namespace), `f` runs right here: nothing would change but the cost of a thread.
    pub fn run<T: Send, F: FnOnce() -> T + Send>(&self, f: F) -> Result<T, Error> {
        if self.is_the_callers() {
            return Ok(f());
        }
        std::thread::scope(|s| {
            let worker = std::thread::Builder::new()
                .name("twill-netns".into())
                .spawn_scoped(s, || -> Result<T, Error> {
                    setns(&self.fd, CloneFlags::CLONE_NEWNET)
                        .map_err(|e| Error::Enter { path: self.path.clone(), source: e.into() })?;
                    Ok(f())
                })
                .map_err(|source| Error::Spawn { path: self.path.clone(), source })?;
            match worker.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Checks that `fd` is an nsfs inode of type `CLONE_NEWNET`.
fn validate(fd: &OwnedFd, path: &Path) -> Result<(), Error> {
    let sfs =
        fstatfs(fd).map_err(|e| Error::Io { op: "statfs", path: path.to_path_buf(), source: e.into() })?;
    if sfs.filesystem_type() != NSFS_MAGIC {
        return Err(Error::NotNetns {
            path: path.to_path_buf(),
            reason: "not on nsfs (is the bind mount missing?)".into(),
        });
    }
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd, which is open for the
    // duration of the call.
    let ty = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) };
    if ty < 0 {
        return Err(Error::Io {
            op: "query type of",
            path: path.to_path_buf(),
            source: nix::errno::Errno::last().into(),
        });
    }
    if ty != libc::CLONE_NEWNET {
        return Err(Error::NotNetns {
            path: path.to_path_buf(),
            reason: format!("namespace type is {ty:#x}, not CLONE_NEWNET"),
        });
    }
    Ok(())
}
