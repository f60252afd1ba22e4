//! The file datastore: a directory shared by the nodes of one machine (the lab's default).
//!
//! Layout: `DIR/kv/NAME` one JSON record per key (see `file_record`), `DIR/leases/ID` one
//! record per lease with its expiry timestamp, `DIR/revision` the store-wide revision, and
//! `DIR/lock`, on which every write takes an exclusive `flock(2)`: compare-and-swap is
//! read-compare-write under that lock. Reads take no lock; records are replaced by rename, so
//! a reader never sees half of one. Keys whose lease expired read as absent and are deleted
//! by the next writer (or by the reader that noticed them), so a crashed node's keys go away
//! after its TTL without the node.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file_lease::{LeaseRecord, LeaseTable, lease_path, now_ms};
use super::file_record::{Record, decode_key, encode_key, read_json, remove, write_json};
use super::file_watch::FileWatch;
use super::{Compare, Datastore, Entry, LeaseId, Listing, Op, StoreError, Txn, Watch};

/// A datastore in a directory.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// Opens (and creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<FileStore, StoreError> {
        for sub in ["kv", "leases"] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path).map_err(|source| StoreError::Io { op: "create", path, source })?;
        }
        Ok(FileStore { dir: dir.to_path_buf() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn key_path(&self, key: &str) -> Result<PathBuf, StoreError> {
        Ok(self.dir.join("kv").join(encode_key(key)?))
    }

    fn revision(&self) -> Result<u64, StoreError> {
        let path = self.dir.join("revision");
        Ok(read_json::<u64>(&path)?.unwrap_or(0))
    }

    /// Every record under `prefix`, live or not.
    fn scan(&self, prefix: &str) -> Result<Vec<Record>, StoreError> {
        let kv = self.dir.join("kv");
        let names = std::fs::read_dir(&kv).map_err(|source| StoreError::Io {
            op: "list",
            path: kv.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for entry in names.flatten() {
            let Some(key) = entry.file_name().to_str().and_then(decode_key) else { continue };
            if !key.starts_with(prefix) {
                continue;
            }
            // A record deleted between listing and reading is simply gone.
            if let Some(rec) = read_json::<Record>(&entry.path())? {
                out.push(rec);
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Runs `f` holding the store's write lock, after deleting the keys of expired leases.
    fn locked<T>(&self, f: impl FnOnce(&mut Locked<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let path = self.dir.join("lock");
        let io = |op, source| StoreError::Io { op, path: path.clone(), source };
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io("open", e))?;
        file.lock().map_err(|e| io("lock", e))?;
        let mut l = Locked { store: self, now: now_ms(), leases: LeaseTable::load(&self.dir)?, revision: 0 };
        l.revision = self.revision()?;
        l.sweep(false)?;
        let out = f(&mut l);
        drop(file);
        out
    }

    /// Deletes keys whose lease is gone, after a reader saw one.
    fn sweep(&self) -> Result<(), StoreError> {
        self.locked(|l| l.sweep(true))
    }
}

/// The store while its write lock is held.
struct Locked<'a> {
    store: &'a FileStore,
    now: u64,
    leases: LeaseTable,
    revision: u64,
}

impl Locked<'_> {
    fn bump(&mut self) -> Result<u64, StoreError> {
        self.revision += 1;
        write_json(&self.store.dir.join("revision"), &self.revision)?;
        Ok(self.revision)
    }

    /// The live record of `key`.
    fn read(&self, key: &str) -> Result<Option<Record>, StoreError> {
        let rec = read_json::<Record>(&self.store.key_path(key)?)?;
        Ok(rec.filter(|r| self.leases.keeps(r.lease_id(), self.now)))
    }

    fn check_lease(&self, lease: Option<LeaseId>) -> Result<(), StoreError> {
        match lease {
            Some(id) if !self.leases.keeps(Some(id), self.now) => Err(StoreError::LeaseNotFound(id)),
            _ => Ok(()),
        }
    }

    fn write(&self, key: &str, value: &[u8], lease: Option<LeaseId>, rev: u64) -> Result<(), StoreError> {
        let old = self.read(key)?;
        let mut rec = Record::new(key, value, lease);
        rec.version = old.as_ref().map_or(1, |o| o.version + 1);
        rec.create_revision = old.as_ref().map_or(rev, |o| o.create_revision);
        rec.mod_revision = rev;
        write_json(&self.store.key_path(key)?, &rec)
    }

    fn apply(&self, op: &Op, rev: u64) -> Result<(), StoreError> {
        match op {
            Op::Put { key, value, lease } => self.write(key, value, *lease, rev),
            Op::Delete { key } => remove(&self.store.key_path(key)?).map(drop),
        }
    }

    fn holds(&self, key: &str, cmp: Compare) -> Result<bool, StoreError> {
        let cur = self.read(key)?;
        Ok(match cmp {
            Compare::Absent => cur.is_none(),
            Compare::ModRevision(rev) => cur.is_some_and(|r| r.mod_revision == rev),
        })
    }

    /// Removes expired leases and, when there were any (or `force`), every key whose lease
    /// is gone; one revision for all of it.
    fn sweep(&mut self, force: bool) -> Result<(), StoreError> {
        let expired = self.leases.expired(self.now);
        for id in &expired {
            remove(&lease_path(&self.store.dir, *id))?;
            self.leases.remove(*id);
        }
        if expired.is_empty() && !force {
            return Ok(());
        }
        let dead: Vec<Record> = self
            .store
            .scan("/")?
            .into_iter()
            .filter(|r| !self.leases.keeps(r.lease_id(), self.now))
            .collect();
        if dead.is_empty() {
            return Ok(());
        }
        for rec in &dead {
            remove(&self.store.key_path(&rec.key)?)?;
        }
        self.bump().map(drop)
    }

    fn new_lease_id(&self) -> LeaseId {
        let pid = u64::from(std::process::id() & 0xffff);
        let mut id = i64::try_from(((self.now & 0x7fff_ffff_ffff) << 16) | pid).unwrap_or(1);
        while self.leases.contains(LeaseId(id)) || lease_path(&self.store.dir, LeaseId(id)).exists() {
            id = id.wrapping_add(1).max(1);
        }
        LeaseId(id)
    }
}

impl Datastore for FileStore {
    fn describe(&self) -> String {
        format!("file:{}", self.dir.display())
    }

    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let path = self.key_path(key)?;
        let Some(rec) = read_json::<Record>(&path)? else { return Ok(None) };
        if rec.lease.is_some() && !LeaseTable::load(&self.dir)?.keeps(rec.lease_id(), now_ms()) {
            self.sweep()?;
            return Ok(None);
        }
        rec.into_entry(&path).map(Some)
    }

    fn list(&self, prefix: &str) -> Result<Listing, StoreError> {
        // The revision is read first: entries may be newer than it, never older, so a watch
        // started after it misses nothing.
        let revision = self.revision()?;
        let records = self.scan(prefix)?;
        let (leases, now) = (LeaseTable::load(&self.dir)?, now_ms());
        let (live, dead): (Vec<Record>, Vec<Record>) =
            records.into_iter().partition(|r| leases.keeps(r.lease_id(), now));
        if !dead.is_empty() {
            self.sweep()?;
        }
        let entries = live
            .into_iter()
            .map(|r| {
                let path = self.key_path(&r.key)?;
                r.into_entry(&path)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Listing { entries, revision })
    }

    fn put(&self, key: &str, value: &[u8], lease: Option<LeaseId>) -> Result<(), StoreError> {
        self.key_path(key)?;
        self.locked(|l| {
            l.check_lease(lease)?;
            let rev = l.bump()?;
            l.write(key, value, lease, rev)
        })
    }

    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.key_path(key)?;
        self.locked(|l| {
            if l.read(key)?.is_none() {
                return Ok(false);
            }
            let rev = l.bump()?;
            l.apply(&Op::Delete { key: key.to_string() }, rev)?;
            Ok(true)
        })
    }

    fn txn(&self, txn: &Txn) -> Result<bool, StoreError> {
        self.locked(|l| {
            for (key, cmp) in &txn.compare {
                if !l.holds(key, *cmp)? {
                    return Ok(false);
                }
            }
            for op in &txn.ops {
                if let Op::Put { lease, key, .. } = op {
                    l.store.key_path(key)?;
                    l.check_lease(*lease)?;
                }
            }
            let rev = l.bump()?;
            txn.ops.iter().try_for_each(|op| l.apply(op, rev))?;
            Ok(true)
        })
    }

    fn lease_grant(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        self.locked(|l| {
            let id = l.new_lease_id();
            let rec = LeaseRecord::new(id, ttl, l.now);
            write_json(&lease_path(&self.dir, id), &rec)?;
            l.leases.insert(rec);
            Ok(id)
        })
    }

    fn lease_keepalive(&self, lease: LeaseId) -> Result<bool, StoreError> {
        self.locked(|l| match l.leases.get(lease) {
            Some(rec) => write_json(&lease_path(&self.dir, lease), &rec.renewed(l.now)).map(|()| true),
            None => Ok(false),
        })
    }

    fn lease_revoke(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.locked(|l| {
            if !l.leases.contains(lease) {
                return Err(StoreError::LeaseNotFound(lease));
            }
            remove(&lease_path(&self.dir, lease))?;
            l.leases.remove(lease);
            l.sweep(true)
        })
    }

    fn watch(&self, prefix: &str, after_revision: u64) -> Result<Box<dyn Watch>, StoreError> {
        Ok(Box::new(FileWatch::new(self.clone(), prefix, after_revision)?))
    }
}
