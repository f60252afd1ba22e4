//! Named namespaces in iproute2's layout: `/run/netns/NAME` bind mounts, like `ip netns add`.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

use crate::{Error, NetNs};

/// Where iproute2 keeps named network namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Serialises the one-time setup of the shared `/run/netns` mount within this process.
static RUN_DIR_SETUP: Mutex<()> = Mutex::new(());

/// The path of a named namespace: `/run/netns/NAME`.
pub fn named_path(name: &str) -> PathBuf {
    Path::new(NETNS_RUN_DIR).join(name)
}

/// Creates a new network namespace bind-mounted at `/run/netns/NAME` (`ip netns add NAME`).
/// Fails with `EEXIST` when the name is taken.
pub fn create_named(name: &str) -> Result<NetNs, Error> {
    check_name(name)?;
    let path = named_path(name);
    ensure_run_dir(&path)?;
    create_mount_point(&path)?;
    if let Err(e) = bind_new_netns(&path) {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    NetNs::open(&path)
}

/// Deletes the named namespace (`ip netns delete NAME`): lazily unmounts and unlinks
/// `/run/netns/NAME`. Succeeds when it does not exist. The namespace itself lives on while
/// some process or fd still holds it.
pub fn delete_named(name: &str) -> Result<(), Error> {
    check_name(name)?;
    let path = named_path(name);
    match umount2(&path, MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point (a half-created entry); ENOENT: already gone.
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(delete_err("umount", &path, e)),
    }
    match nix::unistd::unlink(&path) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(delete_err("unlink", &path, e)),
    }
}

fn check_name(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        "empty"
    } else if name == "." || name == ".." || name.contains('/') {
        "must not be a path"
    } else if name.contains('\0') {
        "contains a NUL byte"
    } else if name.len() > 255 {
        "longer than 255 bytes"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName { name: name.to_string(), reason })
}

/// Makes `/run/netns` exist and be a shared mount point, as iproute2 does, so that namespace
/// mounts made here propagate into mount namespaces created later (e.g. by container runtimes).
fn ensure_run_dir(path: &Path) -> Result<(), Error> {
    let _guard = RUN_DIR_SETUP.lock().unwrap_or_else(|p| p.into_inner());
    let dir = Path::new(NETNS_RUN_DIR);
    match nix::unistd::mkdir(dir, nix::sys::stat::Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(create_err("mkdir /run/netns for", path, e)),
    }
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    match mount(None::<&str>, dir, Some("none"), shared, None::<&str>) {
        Ok(()) => return Ok(()),
        Err(Errno::EINVAL) => {} // not a mount point yet
        Err(e) => return Err(create_err("make /run/netns shared for", path, e)),
    }
    let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(Some(dir), dir, Some("none"), bind, None::<&str>)
        .map_err(|e| create_err("bind-mount /run/netns for", path, e))?;
    mount(None::<&str>, dir, Some("none"), shared, None::<&str>)
        .map_err(|e| create_err("make /run/netns shared for", path, e))
}

fn create_mount_point(path: &Path) -> Result<(), Error> {
    OpenOptions::new().write(true).create_new(true).mode(0o000).open(path).map(drop).map_err(|e| {
        let errno = Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
        create_err("create mount point", path, errno)
    })
}

/// On a fresh thread: unshare into a new netns and bind its `/proc/thread-self/ns/net` onto
/// `path`. The thread exits afterwards, so no thread of ours stays in the new namespace.
fn bind_new_netns(path: &Path) -> Result<(), Error> {
    let work = || -> Result<(), Error> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| create_err("unshare", path, e))?;
        mount(Some("/proc/thread-self/ns/net"), path, Some("none"), MsFlags::MS_BIND, None::<&str>)
            .map_err(|e| create_err("bind-mount", path, e))
    };
    std::thread::scope(|s| {
        let worker = std::thread::Builder::new()
            .name("twill-netns-create".into())
            .spawn_scoped(s, work)
            .map_err(|source| Error::Spawn { path: path.to_path_buf(), source })?;
        match worker.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

fn create_err(op: &'static str, path: &Path, e: Errno) -> Error {
    Error::Create { op, path: path.to_path_buf(), source: e.into() }
}

fn delete_err(op: &'static str, path: &Path, e: Errno) -> Error {
    Error::Delete { op, path: path.to_path_buf(), source: e.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for bad in ["", ".", "..", "a/b", "a\0b"] {
            assert!(matches!(check_name(bad), Err(Error::InvalidName { .. })), "{bad:?}");
        }
        assert!(check_name("twt-x-1").is_ok());
        assert_eq!(named_path("x"), PathBuf::from("/run/netns/x"));
    }
}
