//! Errors of the nl crate. Every kernel failure names the operation and the object
//! (`add address 10.1.2.3/24 to eth0 in netns /run/netns/x: file exists`) and keeps the errno.

use std::fmt;
use std::io;
use std::path::PathBuf;

use netns::OsError;
use nix::errno::Errno;

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why one netlink exchange failed, before the operation's context is attached.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The kernel answered with a negative errno; `detail` is its extended-ack message.
    #[error("{}{}", OsError(Errno::from_raw(*errno)), detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Kernel { errno: i32, detail: Option<String> },
    /// Sending to or receiving from the socket failed.
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
    /// A reply could not be parsed.
    #[error("decode reply: {0}")]
    Decode(String),
    /// Every attempt of a dump was interrupted by concurrent changes (`NLM_F_DUMP_INTR`).
    #[error("dump interrupted {0} times in a row")]
    DumpInterrupted(u32),
}

impl Failure {
    /// The errno behind the failure, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Failure::Kernel { errno, .. } => Some(*errno),
            Failure::Io(e) => e.raw_os_error(),
            Failure::Decode(_) => None,
            Failure::DumpInterrupted(_) => Some(libc::EINTR),
        }
    }
}

/// Everything the nl crate can report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A netlink operation failed; `op` names it with its object and netns.
    #[error("{op}: {source}")]
    Op { op: String, source: Failure },
    /// Opening the netlink socket failed.
    #[error("open netlink socket{}: {source}", in_netns(.ns))]
    Socket { ns: Option<PathBuf>, source: io::Error },
    /// Entering a namespace failed.
    #[error(transparent)]
    Netns(#[from] netns::Error),
    /// An argument was rejected before anything was sent to the kernel.
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid { what: &'static str, value: String, reason: &'static str },
    /// Reading or writing a sysctl failed.
    #[error("{op} sysctl {key} in netns {}: {source}", .ns.display())]
    Sysctl { op: &'static str, key: String, ns: PathBuf, source: io::Error },
}

impl Error {
    /// The errno behind this error, if it came from the kernel or a system call.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Op { source, .. } => source.errno(),
            Error::Socket { source, .. } | Error::Sysctl { source, .. } => source.raw_os_error(),
            Error::Netns(e) => e.errno(),
            Error::Invalid { .. } => None,
        }
    }

    /// The object already exists (`EEXIST`), e.g. a concurrent creator won the race.
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }

    /// The object is absent: `ENOENT`, `ENODEV` (link), `ESRCH` (route) or `EADDRNOTAVAIL`
    /// (address) — the kernel uses all four for "no such thing".
    pub fn is_not_found(&self) -> bool {
        matches!(self.errno(), Some(libc::ENOENT | libc::ENODEV | libc::ESRCH | libc::EADDRNOTAVAIL))
    }

    pub(crate) fn invalid(what: &'static str, value: impl fmt::Display, reason: &'static str) -> Self {
        Error::Invalid { what, value: value.to_string(), reason }
    }
}

/// `" in netns PATH"`, or nothing for the namespace the socket was opened in by default.
pub(crate) fn in_netns(ns: &Option<PathBuf>) -> String {
    ns.as_ref().map(|p| format!(" in netns {}", p.display())).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_error_reads_like_a_sentence() {
        let e = Error::Op {
            op: "add address 10.1.2.3/24 to eth0 in netns /run/netns/x".into(),
            source: Failure::Kernel { errno: libc::EEXIST, detail: None },
        };
        assert_eq!(e.to_string(), "add address 10.1.2.3/24 to eth0 in netns /run/netns/x: file exists");
        assert!(e.is_exists());
        assert!(!e.is_not_found());
        assert_eq!(e.errno(), Some(libc::EEXIST));
    }

    #[test]
    fn kernel_detail_is_appended() {
        let f = Failure::Kernel { errno: libc::EINVAL, detail: Some("unknown vxlan option".into()) };
        assert_eq!(f.to_string(), "invalid argument (unknown vxlan option)");
    }

    #[test]
    fn not_found_covers_kernel_variants() {
        for errno in [libc::ENOENT, libc::ENODEV, libc::ESRCH, libc::EADDRNOTAVAIL] {
            let e = Error::Op { op: "x".into(), source: Failure::Kernel { errno, detail: None } };
            assert!(e.is_not_found(), "{errno}");
        }
    }
}
