//! Errors of the netns crate: each variant names the path or namespace name and the failed step.

use std::fmt;
use std::io;
use std::path::PathBuf;

use nix::errno::Errno;

/// An errno rendered the way twill writes error messages: lower-case, no trailing period
/// (`file exists`, not `EEXIST: File exists`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OsError(pub Errno);

impl fmt::Display for OsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let desc = self.0.desc();
        let mut chars = desc.chars();
        match chars.next() {
            Some(first) => write!(f, "{}{}", first.to_lowercase(), chars.as_str()),
            None => write!(f, "errno {}", self.0 as i32),
        }
    }
}

impl std::error::Error for OsError {}

impl From<Errno> for OsError {
    fn from(e: Errno) -> Self {
        OsError(e)
    }
}

/// Everything that can go wrong opening, entering, creating or deleting a network namespace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `open(2)` or `fstat(2)`/`fstatfs(2)` on the namespace file failed.
    #[error("{op} netns {path}: {source}")]
    Io { op: &'static str, path: PathBuf, source: OsError },
    /// The path exists but is not a network namespace file.
    #[error("{path} is not a network namespace: {reason}")]
    NotNetns { path: PathBuf, reason: String },
    /// `setns(2)` into the namespace failed.
    #[error("enter netns {path}: {source}")]
    Enter { path: PathBuf, source: OsError },
    /// A name given to [`crate::create_named`] / [`crate::delete_named`] is unusable.
    #[error("invalid netns name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// A step of creating a named namespace failed (`op` says which).
    #[error("create netns {path}: {op}: {source}")]
    Create { op: &'static str, path: PathBuf, source: OsError },
    /// A step of deleting a named namespace failed (`op` says which).
    #[error("delete netns {path}: {op}: {source}")]
    Delete { op: &'static str, path: PathBuf, source: OsError },
    /// The helper thread could not be started.
    #[error("spawn thread for netns {path}: {source}")]
    Spawn { path: PathBuf, source: io::Error },
}

impl Error {
    /// The errno behind this error, if it came from a system call.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. }
            | Error::Enter { source, .. }
            | Error::Create { source, .. }
            | Error::Delete { source, .. } => Some(source.0 as i32),
            Error::Spawn { source, .. } => source.raw_os_error(),
            Error::NotNetns { .. } | Error::InvalidName { .. } => None,
        }
    }

    /// True when the namespace file does not exist.
    pub fn is_not_found(&self) -> bool {
        self.errno() == Some(libc::ENOENT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_error_is_lower_case() {
        assert_eq!(OsError(Errno::EEXIST).to_string(), "file exists");
        assert_eq!(OsError(Errno::ENOENT).to_string(), "no such file or directory");
    }

    #[test]
    fn message_names_path() {
        let e = Error::Io { op: "open", path: "/run/netns/x".into(), source: Errno::ENOENT.into() };
        assert_eq!(e.to_string(), "open netns /run/netns/x: no such file or directory");
        assert!(e.is_not_found());
    }
}
