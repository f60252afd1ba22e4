//! Starting a child process inside a network namespace: the child joins it between fork and
//! exec, so no thread of the parent ever switches namespace.

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::NetNs;

impl NetNs {
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
