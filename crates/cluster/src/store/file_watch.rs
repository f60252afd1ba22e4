//! Watching the file datastore by polling: every 500 ms the prefix is listed and compared
//! with the previous listing. A change and its undo between two polls go unseen, and
//! deletions made before the watch started are not replayed; twill's reconcilers re-list on
//! every event, so they only need to be woken, not told every step.

use std::collections::BTreeMap;
use std::time::Duration;

use super::file::FileStore;
use super::{Datastore, Entry, Event, StoreError, Watch};

/// How often the directory is listed.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// A polling watch of one prefix.
pub(crate) struct FileWatch {
    store: FileStore,
    prefix: String,
    /// Key → mod_revision as of the last poll.
    known: BTreeMap<String, u64>,
    /// Entries newer than the start revision, reported by the first `next`.
    pending: Vec<Event>,
}

impl FileWatch {
    pub fn new(store: FileStore, prefix: &str, after_revision: u64) -> Result<FileWatch, StoreError> {
        super::check_key(prefix)?;
        let listing = store.list(prefix)?;
        let (newer, older): (Vec<Entry>, Vec<Entry>) =
            listing.entries.into_iter().partition(|e| e.mod_revision > after_revision);
        let known = older.into_iter().map(|e| (e.key, e.mod_revision)).collect();
        let pending = newer.into_iter().map(Event::Put).collect();
        Ok(FileWatch { store, prefix: prefix.to_string(), known, pending })
    }
}

/// The events that turn `known` into `now`; updates `known`.
pub(crate) fn diff(known: &mut BTreeMap<String, u64>, now: Vec<Entry>, revision: u64) -> Vec<Event> {
    let mut events = Vec::new();
    let mut seen = BTreeMap::new();
    for e in now {
        seen.insert(e.key.clone(), e.mod_revision);
        if known.get(&e.key) != Some(&e.mod_revision) {
            events.push(Event::Put(e));
        }
    }
    for key in known.keys() {
        if !seen.contains_key(key) {
            events.push(Event::Delete { key: key.clone(), revision });
        }
    }
    *known = seen;
    events
}

impl Watch for FileWatch {
    fn next(&mut self) -> Result<Vec<Event>, StoreError> {
        if !self.pending.is_empty() {
            for e in &self.pending {
                self.known.insert(e.key().to_string(), e.revision());
            }
            return Ok(std::mem::take(&mut self.pending));
        }
        std::thread::sleep(POLL_INTERVAL);
        let listing = self.store.list(&self.prefix)?;
        Ok(diff(&mut self.known, listing.entries, listing.revision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, rev: u64) -> Entry {
        Entry { key: key.into(), value: vec![], version: 1, mod_revision: rev, lease: None }
    }

    #[test]
    fn diff_reports_puts_and_deletes() {
        let mut known = BTreeMap::from([("/a".to_string(), 1), ("/b".to_string(), 2)]);
        let events = diff(&mut known, vec![entry("/a", 1), entry("/b", 5), entry("/c", 6)], 7);
        let keys: Vec<(&str, bool)> = events.iter().map(|e| (e.key(), matches!(e, Event::Put(_)))).collect();
        assert_eq!(keys, vec![("/b", true), ("/c", true)]);
        let events = diff(&mut known, vec![entry("/c", 6)], 8);
        assert_eq!(
            events,
            vec![
                Event::Delete { key: "/a".into(), revision: 8 },
                Event::Delete { key: "/b".into(), revision: 8 }
            ]
        );
        assert!(diff(&mut known, vec![entry("/c", 6)], 8).is_empty());
    }
}
