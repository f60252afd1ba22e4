//! Leases of the file datastore: `DIR/leases/ID` holds the lease's TTL and its expiry as a
//! wall-clock timestamp. Nodes sharing the directory share the machine's clock, so an expiry
//! written by one is read correctly by the others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::file_record::read_json;
use super::{LeaseId, StoreError};

/// One lease as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LeaseRecord {
    pub id: i64,
    pub ttl_ms: u64,
    pub expires_unix_ms: u64,
}

impl LeaseRecord {
    pub fn new(id: LeaseId, ttl: Duration, now_ms: u64) -> LeaseRecord {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        LeaseRecord { id: id.0, ttl_ms, expires_unix_ms: now_ms.saturating_add(ttl_ms) }
    }

    pub fn alive(&self, now_ms: u64) -> bool {
        self.expires_unix_ms > now_ms
    }

    pub fn renewed(self, now_ms: u64) -> LeaseRecord {
        LeaseRecord { expires_unix_ms: now_ms.saturating_add(self.ttl_ms), ..self }
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// `DIR/leases/ID`.
pub(crate) fn lease_path(dir: &Path, id: LeaseId) -> PathBuf {
    dir.join("leases").join(id.0.to_string())
}

/// Every lease in the store, read at one moment.
#[derive(Debug, Default)]
pub(crate) struct LeaseTable {
    leases: BTreeMap<i64, LeaseRecord>,
}

impl LeaseTable {
    pub fn load(dir: &Path) -> Result<LeaseTable, StoreError> {
        let leases_dir = dir.join("leases");
        let entries = std::fs::read_dir(&leases_dir).map_err(|source| StoreError::Io {
            op: "list",
            path: leases_dir.clone(),
            source,
        })?;
        let mut leases = BTreeMap::new();
        for entry in entries.flatten() {
            let Some(id) = entry.file_name().to_str().and_then(|n| n.parse::<i64>().ok()) else {
                continue;
            };
            // A lease removed between listing and reading is simply gone.
            if let Some(rec) = read_json::<LeaseRecord>(&entry.path())? {
                leases.insert(id, rec);
            }
        }
        Ok(LeaseTable { leases })
    }

    /// A key attached to `lease` is live when the lease exists and has not expired.
    pub fn keeps(&self, lease: Option<LeaseId>, now_ms: u64) -> bool {
        lease.is_none_or(|id| self.leases.get(&id.0).is_some_and(|l| l.alive(now_ms)))
    }

    pub fn expired(&self, now_ms: u64) -> Vec<LeaseId> {
        self.leases.values().filter(|l| !l.alive(now_ms)).map(|l| LeaseId(l.id)).collect()
    }

    pub fn get(&self, id: LeaseId) -> Option<LeaseRecord> {
        self.leases.get(&id.0).copied()
    }

    pub fn contains(&self, id: LeaseId) -> bool {
        self.leases.contains_key(&id.0)
    }

    pub fn insert(&mut self, rec: LeaseRecord) {
        self.leases.insert(rec.id, rec);
    }

    pub fn remove(&mut self, id: LeaseId) {
        self.leases.remove(&id.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_expire_and_renew() {
        let l = LeaseRecord::new(LeaseId(1), Duration::from_secs(2), 1_000);
        assert!(l.alive(2_999));
        assert!(!l.alive(3_000));
        assert!(l.renewed(5_000).alive(6_999));
        let mut t = LeaseTable::default();
        t.insert(l);
        assert!(t.keeps(None, 10_000));
        assert!(t.keeps(Some(LeaseId(1)), 2_000));
        assert!(!t.keeps(Some(LeaseId(1)), 3_000));
        assert!(!t.keeps(Some(LeaseId(2)), 0), "an unknown lease keeps nothing");
        assert_eq!(t.expired(3_000), vec![LeaseId(1)]);
    }
}
