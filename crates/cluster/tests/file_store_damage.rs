//! The file datastore reading files it did not write: copied, renamed or edited by hand, or
//! left at a limit. Each case is an input the fuzzer (fuzz/fuzz_targets/file_store.rs) found
//! or one next to it; the store must answer with an error naming the file, never panic and
//! never answer for a key it was not asked about.

use testkit::TempDir;
use twill_cluster::store::{Datastore, FileStore, StoreError};

fn store_with(files: &[(&str, &str)]) -> (TempDir, FileStore) {
    let dir = TempDir::new("damage");
    let store = FileStore::open(dir.path()).unwrap();
    for (path, content) in files {
        std::fs::write(dir.path().join(path), content).unwrap();
    }
    (dir, store)
}

fn corrupt_path(e: StoreError) -> String {
    match e {
        StoreError::Corrupt { path, reason } => format!("{}: {reason}", path.display()),
        other => panic!("expected a corrupt-record error, got {other}"),
    }
}

/// fuzz: file_store, a record under one key's file name holding another key.
#[test]
fn a_record_holding_another_key_is_corrupt() {
    let (_dir, store) = store_with(&[
        (
            "kv/%2Ftwill%2Fnodes%2Fa",
            r#"{"key":"/twill/nodes/a","value":"1","version":1,"create_revision":1,"mod_revision":1}"#,
        ),
        (
            "kv/%2Ftwill%2Fpods%2Fx%2Fp",
            r#"{"key":"/twil,/pods/x/p","value":"2","version":1,"create_revision":2,"mod_revision":2}"#,
        ),
    ]);
    let e = corrupt_path(store.list("/twill/").unwrap_err());
    assert!(e.contains("%2Ftwill%2Fpods%2Fx%2Fp") && e.contains("\"/twil,/pods/x/p\""), "{e}");
    corrupt_path(store.get("/twill/pods/x/p").unwrap_err());
    // Keys elsewhere are unaffected.
    assert_eq!(store.get("/twill/nodes/a").unwrap().unwrap().value, b"1");
    assert_eq!(store.list("/twill/nodes/").unwrap().entries.len(), 1);
}

/// The store-wide revision cannot grow past its largest value: writes are refused.
#[test]
fn a_revision_at_its_limit_refuses_writes() {
    let (_dir, store) = store_with(&[("revision", "18446744073709551615")]);
    let e = corrupt_path(store.put("/a", b"1", None).unwrap_err());
    assert!(e.contains("revision"), "{e}");
    assert_eq!(store.get("/a").unwrap(), None, "nothing was written");
}

/// A key's version at its limit: overwriting it is refused, deleting it works.
#[test]
fn a_version_at_its_limit_refuses_overwrites() {
    let rec =
        r#"{"key":"/a","value":"1","version":18446744073709551615,"create_revision":1,"mod_revision":1}"#;
    let (_dir, store) = store_with(&[("kv/%2Fa", rec), ("revision", "1")]);
    corrupt_path(store.put("/a", b"2", None).unwrap_err());
    assert_eq!(store.get("/a").unwrap().unwrap().value, b"1");
    assert!(store.delete("/a").unwrap());
}
