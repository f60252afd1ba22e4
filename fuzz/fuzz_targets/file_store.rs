//! The file datastore's directory as any process sharing it may have left it: records under
//! `kv/`, leases under `leases/`, the `revision` file. Input: NUL-separated pairs of a path
//! (`kv/NAME`, `leases/NAME` or `revision`) and its content. The store is then read and
//! written through its public API. Beyond no panic: a listing holds only keys under its
//! prefix, sorted; what a successful put wrote is what get and list return.
#![no_main]

use std::time::Duration;

use cluster::store::{Datastore, FileStore, Txn};
use libfuzzer_sys::fuzz_target;
use twill_fuzz::{all_fields, plain_name, scratch_dir, text};

fuzz_target!(|data: &[u8]| {
    let dir = scratch_dir("file-store");
    let store = FileStore::open(&dir).expect("open a fresh file store");
    for pair in all_fields(data).chunks(2) {
        let (path, content) = (text(pair[0]), pair.get(1).copied().unwrap_or_default());
        let ok = match path.split_once('/') {
            Some(("kv" | "leases", name)) => plain_name(name),
            None => path == "revision",
            _ => false,
        };
        if ok {
            let _ = std::fs::write(dir.join(&path), content);
        }
    }
    read_all(&store, "/");
    read_all(&store, "/twill/");
    write_and_read(&store);
});

fn read_all(store: &FileStore, prefix: &str) {
    let Ok(listing) = store.list(prefix) else { return };
    let keys: Vec<&str> = listing.entries.iter().map(|e| e.key.as_str()).collect();
    assert!(keys.is_sorted(), "listing not sorted: {keys:?}");
    assert!(keys.iter().all(|k| k.starts_with(prefix)), "listing of {prefix} holds {keys:?}");
    for e in &listing.entries {
        let _ = store.get(&e.key);
    }
}

fn write_and_read(store: &FileStore) {
    let key = "/twill/fuzz/k";
    if store.put(key, b"v1", None).is_ok() {
        let got = store.get(key).expect("get after put").expect("put key exists");
        assert_eq!(got.value, b"v1");
        let listing = store.list("/twill/fuzz/").expect("list after put");
        assert!(listing.entries.iter().any(|e| e.key == key && e.value == b"v1"), "put key not listed");
        let swapped = store.txn(&Txn::update(key, got.mod_revision, b"v2", None));
        if swapped.is_ok_and(|done| done) {
            assert_eq!(store.get(key).expect("get after txn").map(|e| e.value), Some(b"v2".to_vec()));
        }
        let _ = store.delete(key);
    }
    let _ = store.txn(&Txn::create("/twill/fuzz/new", b"x", None));
    if let Ok(lease) = store.lease_grant(Duration::from_secs(60)) {
        let _ = store.put("/twill/fuzz/leased", b"y", Some(lease));
        let _ = store.lease_keepalive(lease);
        let _ = store.lease_revoke(lease);
    }
}
