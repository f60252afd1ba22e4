//! Datastores: a small key-value model that both a directory of files and etcd provide.
//!
//! The model is etcd's, cut down to what twill needs: keys are strings starting with `/`,
//! values are bytes, every change gets a store-wide revision, a key can be attached to a
//! [`LeaseId`] and disappears when the lease is not kept alive, a [`Txn`] compares keys and
//! applies puts and deletes all-or-nothing (compare-and-swap), and a [`Watch`] reports
//! changes under a prefix. [`file::FileStore`] and [`etcd::EtcdStore`] pass the same
//! conformance tests (`tests/datastore.rs`).

mod endpoint;
pub mod etcd;
mod etcd_tls;
mod etcd_watch;
pub mod file;
mod file_lease;
mod file_record;
mod file_watch;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use endpoint::{DatastoreConf, Endpoint, EtcdTls};
pub use etcd::EtcdStore;
pub use file::FileStore;

/// A lease: keys attached to it are deleted when it expires or is revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LeaseId(pub i64);

impl std::fmt::Display for LeaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

/// One key with its value and bookkeeping, as etcd's `KeyValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Vec<u8>,
    /// Number of writes since the key was (re)created; 1 after the first put.
    pub version: u64,
    /// The store revision of the last write, unique across keys: what compare-and-swap uses.
    pub mod_revision: u64,
    pub lease: Option<LeaseId>,
}

/// The entries under a prefix, and the store revision they were read at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub entries: Vec<Entry>,
    pub revision: u64,
}

/// One change seen by a [`Watch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Put(Entry),
    Delete { key: String, revision: u64 },
}

impl Event {
    pub fn key(&self) -> &str {
        match self {
            Event::Put(e) => &e.key,
            Event::Delete { key, .. } => key,
        }
    }

    pub fn revision(&self) -> u64 {
        match self {
            Event::Put(e) => e.mod_revision,
            Event::Delete { revision, .. } => *revision,
        }
    }
}

/// A condition on one key in a [`Txn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// The key does not exist.
    Absent,
    /// The key exists and was last written at this revision.
    ModRevision(u64),
}

/// One write in a [`Txn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put { key: String, value: Vec<u8>, lease: Option<LeaseId> },
    Delete { key: String },
}

/// Compare-and-swap: when every comparison holds, every op is applied at one revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    pub compare: Vec<(String, Compare)>,
    pub ops: Vec<Op>,
}

impl Txn {
    /// Creates `key` only if it does not exist.
    pub fn create(key: &str, value: &[u8], lease: Option<LeaseId>) -> Txn {
        Txn {
            compare: vec![(key.to_string(), Compare::Absent)],
            ops: vec![Op::Put { key: key.to_string(), value: value.to_vec(), lease }],
        }
    }

    /// Overwrites `key` only if it is still at `mod_revision`.
    pub fn update(key: &str, mod_revision: u64, value: &[u8], lease: Option<LeaseId>) -> Txn {
        Txn {
            compare: vec![(key.to_string(), Compare::ModRevision(mod_revision))],
            ops: vec![Op::Put { key: key.to_string(), value: value.to_vec(), lease }],
        }
    }

    /// Deletes `key` only if it is still at `mod_revision`.
    pub fn delete(key: &str, mod_revision: u64) -> Txn {
        Txn {
            compare: vec![(key.to_string(), Compare::ModRevision(mod_revision))],
            ops: vec![Op::Delete { key: key.to_string() }],
        }
    }
}

/// A stream of changes under a prefix.
pub trait Watch: Send {
    /// Waits up to about a second and returns the changes seen meanwhile (possibly none). An
    /// error means the watch is over (connection lost, history compacted): list and watch
    /// again.
    fn next(&mut self) -> Result<Vec<Event>, StoreError>;
}

/// What twill needs from a datastore. Implementations are cheap to call from several
/// threads; every call is one round trip (or one locked file operation).
pub trait Datastore: Send + Sync {
    /// `file:DIR` or `etcd:https://HOST:PORT,...`, for logs.
    fn describe(&self) -> String;
    /// One round trip that proves the datastore can be used (reachable, TLS accepted).
    fn check(&self) -> Result<(), StoreError> {
        self.get("/twill/").map(drop)
    }
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError>;
    /// Every entry whose key starts with `prefix`, sorted by key.
    fn list(&self, prefix: &str) -> Result<Listing, StoreError>;
    fn put(&self, key: &str, value: &[u8], lease: Option<LeaseId>) -> Result<(), StoreError>;
    /// Deletes `key`; false when it did not exist.
    fn delete(&self, key: &str) -> Result<bool, StoreError>;
    /// Applies `txn`; false when a comparison failed (nothing was written).
    fn txn(&self, txn: &Txn) -> Result<bool, StoreError>;
    fn lease_grant(&self, ttl: Duration) -> Result<LeaseId, StoreError>;
    /// Renews the lease for its full TTL; false when it has already expired or is unknown.
    fn lease_keepalive(&self, lease: LeaseId) -> Result<bool, StoreError>;
    /// Ends the lease now and deletes every key attached to it.
    fn lease_revoke(&self, lease: LeaseId) -> Result<(), StoreError>;
    /// Changes under `prefix` after `after_revision` (a [`Listing::revision`]).
    fn watch(&self, prefix: &str, after_revision: u64) -> Result<Box<dyn Watch>, StoreError>;
}

/// Rejects keys neither store can hold the same way.
pub fn check_key(key: &str) -> Result<(), StoreError> {
    let reason = if !key.starts_with('/') {
        "must start with /"
    } else if key.len() > 1024 {
        "longer than 1024 bytes"
    } else if key.contains('\0') {
        "contains a NUL byte"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidKey { key: key.to_string(), reason })
}

/// Everything a datastore can report.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid datastore {value:?}: {reason}")]
    InvalidEndpoint { value: String, reason: &'static str },
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("{op} {}: {source}", .path.display())]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
    #[error("unreadable record {}: {reason}", .path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("lease {0} not found (expired or revoked)")]
    LeaseNotFound(LeaseId),
    #[error("etcd {endpoints}: {op}: {reason}")]
    Unavailable { endpoints: String, op: &'static str, reason: String },
    #[error("etcd {endpoints}: {op}: {reason}")]
    Server { endpoints: String, op: &'static str, reason: String },
    #[error("etcd {endpoints}: TLS: {reason}")]
    Tls { endpoints: String, reason: String },
    #[error("{what} {}: {source}", .path.display())]
    TlsFile { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("watch of {prefix:?} ended: {reason}")]
    WatchEnded { prefix: String, reason: String },
}

impl StoreError {
    /// The datastore could not be reached or answered garbage: retrying later may work.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. } | StoreError::WatchEnded { .. })
    }

    /// The members did not answer in time (overloaded, frozen, or cut off), as opposed to
    /// refusing the connection: the request may or may not have been applied.
    pub fn is_timeout(&self) -> bool {
        matches!(self, StoreError::Unavailable { reason, .. } if reason.starts_with(etcd::NO_ANSWER))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        assert!(check_key("/twill/nodes/a").is_ok());
        assert!(check_key("twill").is_err());
        assert!(check_key("/a\0").is_err());
    }
}
