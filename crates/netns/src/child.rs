//! Starting a child process inside a network namespace. [`NetNs::spawn`] starts it from a
//! short-lived thread that has entered the namespace, so the standard library can use
//! posix_spawn (a vfork: the parent's memory is not copied, which costs a large parent a
//! millisecond per child); [`NetNs::spawn_inside`] makes the child join between fork and exec,
//! for callers that hand the command on.

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use crate::NetNs;

impl NetNs {
    /// Spawns `cmd` inside this namespace from a thread that entered it; no thread of the
    /// caller switches namespace. The child is the process's, waitable from any thread.
    pub fn spawn(&self, cmd: &mut Command) -> std::io::Result<Child> {
        match self.run(|| cmd.spawn()) {
            Ok(spawned) => spawned,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }

    /// Makes `cmd` run inside this namespace. The namespace fd must stay open until the child
    /// has been spawned, which holding `&self` across the spawn guarantees.
    pub fn spawn_inside(&self, cmd: &mut Command) {
        let fd: RawFd = self.as_fd().as_raw_fd();
        // SAFETY: between fork and exec only async-signal-safe calls are allowed; setns(2) is a
        // plain system call and allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
}
