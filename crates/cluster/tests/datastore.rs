//! Datastore conformance: the same suite against the file store and a real etcd 3.4
//! (started on 127.0.0.1 with random ports and a temporary data dir, killed at the end), plain
//! and with TLS and client certificates; TLS mistakes; a three-member cluster losing members.

use std::sync::Arc;
use std::time::{Duration, Instant};

use testkit::{EtcdCluster, EtcdOpts, ServerTls, TempDir};
use twill_cluster::pki::{self, Pki};
use twill_cluster::store::{
    Compare, Datastore, DatastoreConf, EtcdTls, Event, FileStore, LeaseId, Op, StoreError, Txn, Watch,
};

fn file_store(dir: &TempDir) -> FileStore {
    FileStore::open(dir.path()).unwrap()
}

/// Every behaviour the agent and the lab rely on, each under its own prefix.
fn conformance(store: Arc<dyn Datastore>) {
    put_get_list_delete(store.as_ref());
    revisions_and_versions(store.as_ref());
    compare_and_swap(store.as_ref());
    txn_is_all_or_nothing(store.as_ref());
    binary_values_and_bad_keys(store.as_ref());
    leases_attach_and_revoke(store.as_ref());
    watch_sees_puts_and_deletes(store.as_ref());
    watch_replays_from_revision(store.as_ref());
    concurrent_creates_have_one_winner(store.clone());
}

fn put_get_list_delete(s: &dyn Datastore) {
    s.put("/c1/b", b"2", None).unwrap();
    s.put("/c1/a", b"1", None).unwrap();
    s.put("/c1/ab", b"3", None).unwrap();
    s.put("/c10", b"other prefix", None).unwrap();
    assert_eq!(s.get("/c1/a").unwrap().unwrap().value, b"1");
    assert_eq!(s.get("/c1/zzz").unwrap(), None);
    let keys: Vec<String> = s.list("/c1/").unwrap().entries.into_iter().map(|e| e.key).collect();
    assert_eq!(keys, ["/c1/a", "/c1/ab", "/c1/b"], "sorted, prefix-bounded");
    assert_eq!(s.list("/c1/a").unwrap().entries.len(), 2, "a string prefix, not a path prefix");
    assert!(s.delete("/c1/a").unwrap());
    assert!(!s.delete("/c1/a").unwrap(), "deleting twice reports absence");
    assert_eq!(s.get("/c1/a").unwrap(), None);
}

fn revisions_and_versions(s: &dyn Datastore) {
    s.put("/c2/k", b"1", None).unwrap();
    let first = s.get("/c2/k").unwrap().unwrap();
    s.put("/c2/k", b"2", None).unwrap();
    let second = s.get("/c2/k").unwrap().unwrap();
    assert_eq!((first.version, second.version), (1, 2));
    assert!(second.mod_revision > first.mod_revision);
    let listing = s.list("/c2/").unwrap();
    assert!(listing.revision >= second.mod_revision, "{listing:?}");
    s.delete("/c2/k").unwrap();
    s.put("/c2/k", b"3", None).unwrap();
    assert_eq!(s.get("/c2/k").unwrap().unwrap().version, 1, "recreated keys start over");
}

fn compare_and_swap(s: &dyn Datastore) {
    assert!(s.txn(&Txn::create("/c3/k", b"a", None)).unwrap());
    assert!(!s.txn(&Txn::create("/c3/k", b"b", None)).unwrap(), "create of an existing key fails");
    let e = s.get("/c3/k").unwrap().unwrap();
    assert_eq!(e.value, b"a");
    assert!(s.txn(&Txn::update("/c3/k", e.mod_revision, b"c", None)).unwrap());
    assert!(!s.txn(&Txn::update("/c3/k", e.mod_revision, b"d", None)).unwrap(), "stale revision fails");
    assert_eq!(s.get("/c3/k").unwrap().unwrap().value, b"c");
    assert!(!s.txn(&Txn::delete("/c3/k", e.mod_revision)).unwrap());
    let now = s.get("/c3/k").unwrap().unwrap();
    assert!(s.txn(&Txn::delete("/c3/k", now.mod_revision)).unwrap());
    assert_eq!(s.get("/c3/k").unwrap(), None);
    assert!(
        !s.txn(&Txn::update("/c3/k", now.mod_revision, b"e", None)).unwrap(),
        "update of an absent key fails"
    );
}

fn txn_is_all_or_nothing(s: &dyn Datastore) {
    s.put("/c4/taken", b"x", None).unwrap();
    let both = |second: &str| Txn {
        compare: vec![("/c4/a".into(), Compare::Absent), (second.into(), Compare::Absent)],
        ops: vec![
            Op::Put { key: "/c4/a".into(), value: b"1".to_vec(), lease: None },
            Op::Put { key: "/c4/b".into(), value: b"2".to_vec(), lease: None },
            Op::Delete { key: "/c4/taken".into() },
        ],
    };
    assert!(!s.txn(&both("/c4/taken")).unwrap());
    assert_eq!(s.list("/c4/").unwrap().entries.len(), 1, "nothing was written");
    assert!(s.txn(&both("/c4/b")).unwrap());
    let listing = s.list("/c4/").unwrap();
    let keys: Vec<&str> = listing.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["/c4/a", "/c4/b"]);
    assert_eq!(listing.entries[0].mod_revision, listing.entries[1].mod_revision, "one revision per txn");
}

fn binary_values_and_bad_keys(s: &dyn Datastore) {
    let bytes = [0u8, 0xff, b'\n', 0x80];
    s.put("/c5/bin", &bytes, None).unwrap();
    assert_eq!(s.get("/c5/bin").unwrap().unwrap().value, bytes);
    s.put("/c5/sub/10.244.1.0-24", b"{}", None).unwrap();
    s.put("/c5/100%/x", b"", None).unwrap();
    assert_eq!(s.get("/c5/100%/x").unwrap().unwrap().value, b"");
    assert!(matches!(s.put("no-slash", b"", None), Err(StoreError::InvalidKey { .. })));
}

fn leases_attach_and_revoke(s: &dyn Datastore) {
    let lease = s.lease_grant(Duration::from_secs(30)).unwrap();
    s.put("/c6/a", b"1", Some(lease)).unwrap();
    assert!(s.txn(&Txn::create("/c6/b", b"2", Some(lease))).unwrap());
    s.put("/c6/free", b"3", None).unwrap();
    assert_eq!(s.get("/c6/a").unwrap().unwrap().lease, Some(lease));
    assert!(s.lease_keepalive(lease).unwrap());
    s.lease_revoke(lease).unwrap();
    let keys: Vec<String> = s.list("/c6/").unwrap().entries.into_iter().map(|e| e.key).collect();
    assert_eq!(keys, ["/c6/free"], "revoking deletes the attached keys");
    assert!(!s.lease_keepalive(lease).unwrap());
    assert!(matches!(s.put("/c6/x", b"", Some(lease)), Err(StoreError::LeaseNotFound(l)) if l == lease));
    assert!(matches!(s.lease_revoke(lease), Err(StoreError::LeaseNotFound(_))));
    assert!(!s.lease_keepalive(LeaseId(424242)).unwrap());
}

/// Collects events from `watch` until `want` of them arrived or 10 s passed.
fn collect(watch: &mut dyn Watch, want: usize) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut events = Vec::new();
    while events.len() < want && Instant::now() < deadline {
        events.extend(watch.next().unwrap());
    }
    events
}

fn watch_sees_puts_and_deletes(s: &dyn Datastore) {
    s.put("/c7/old", b"0", None).unwrap();
    let rev = s.list("/c7/").unwrap().revision;
    let mut w = s.watch("/c7/", rev).unwrap();
    s.put("/c7/a", b"1", None).unwrap();
    s.put("/c8/not-watched", b"1", None).unwrap();
    let events = collect(w.as_mut(), 1);
    assert!(matches!(&events[..], [Event::Put(e)] if e.key == "/c7/a" && e.value == b"1"), "{events:?}");
    s.delete("/c7/old").unwrap();
    let events = collect(w.as_mut(), 1);
    assert!(matches!(&events[..], [Event::Delete { key, .. }] if key == "/c7/old"), "{events:?}");
}

fn watch_replays_from_revision(s: &dyn Datastore) {
    let before = s.list("/c9/").unwrap().revision;
    s.put("/c9/a", b"1", None).unwrap();
    let mut w = s.watch("/c9/", before).unwrap();
    let events = collect(w.as_mut(), 1);
    assert!(matches!(&events[..], [Event::Put(e)] if e.key == "/c9/a"), "{events:?}");
}

fn concurrent_creates_have_one_winner(s: Arc<dyn Datastore>) {
    let winners: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let s = s.clone();
                scope.spawn(move || s.txn(&Txn::create("/c10/one", format!("{i}").as_bytes(), None)).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| usize::from(h.join().unwrap())).sum()
    });
    assert_eq!(winners, 1);
}

/// A key whose lease is not kept alive disappears after the TTL; one kept alive stays.
fn leases_expire(s: &dyn Datastore) {
    let dying = s.lease_grant(Duration::from_secs(2)).unwrap();
    let kept = s.lease_grant(Duration::from_secs(2)).unwrap();
    s.put("/c11/dying", b"", Some(dying)).unwrap();
    s.put("/c11/kept", b"", Some(kept)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.get("/c11/dying").unwrap().is_some() {
        assert!(Instant::now() < deadline, "key of an expired lease is still there");
        assert!(s.lease_keepalive(kept).unwrap());
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(s.get("/c11/kept").unwrap().is_some(), "a kept-alive lease keeps its keys");
    assert!(!s.lease_keepalive(dying).unwrap());
    let keys: Vec<String> = s.list("/c11/").unwrap().entries.into_iter().map(|e| e.key).collect();
    assert_eq!(keys, ["/c11/kept"]);
}

#[test]
fn file_store_conforms() {
    let dir = TempDir::new("store");
    conformance(Arc::new(file_store(&dir)));
}

#[test]
fn file_store_leases_expire() {
    let dir = TempDir::new("store-ttl");
    leases_expire(&file_store(&dir));
}

#[test]
fn file_store_is_shared_between_handles() {
    let dir = TempDir::new("store-shared");
    let (a, b) = (file_store(&dir), file_store(&dir));
    let lease = a.lease_grant(Duration::from_secs(30)).unwrap();
    a.put("/s/k", b"v", Some(lease)).unwrap();
    assert_eq!(b.get("/s/k").unwrap().unwrap().value, b"v");
    assert!(b.lease_keepalive(lease).unwrap());
    b.lease_revoke(lease).unwrap();
    assert_eq!(a.get("/s/k").unwrap(), None);
}

fn etcd_store(etcd: &EtcdCluster, tls: EtcdTls) -> Arc<dyn Datastore> {
    DatastoreConf::parse(&etcd.endpoint(), tls).unwrap().open().unwrap()
}

/// A CA, server and client certificates for 127.0.0.1, and a cluster that demands both.
fn tls_cluster(dir: &TempDir, members: usize) -> (EtcdCluster, Pki) {
    let pki = pki::generate(&dir.path().join("pki"), &["127.0.0.1".into(), "localhost".into()]).unwrap();
    let tls = ServerTls {
        ca: pki.ca.clone(),
        cert: pki.server_cert.clone(),
        key: pki.server_key.clone(),
        client_auth: true,
    };
    (EtcdCluster::start_with(EtcdOpts { members, hosts: None, tls: Some(tls) }, None), pki)
}

fn client_tls(pki: &Pki) -> EtcdTls {
    EtcdTls {
        cacert: Some(pki.ca.clone()),
        cert: Some(pki.client_cert.clone()),
        key: Some(pki.client_key.clone()),
    }
}

#[test]
fn etcd_conforms() {
    let etcd = EtcdCluster::start();
    conformance(etcd_store(&etcd, EtcdTls::default()));
}

#[test]
fn etcd_with_tls_and_client_certificates_conforms() {
    let dir = TempDir::new("etcd-tls");
    let (etcd, pki) = tls_cluster(&dir, 1);
    conformance(etcd_store(&etcd, client_tls(&pki)));
}

#[test]
fn etcd_tls_mistakes_are_clear_errors() {
    let dir = TempDir::new("etcd-tls-bad");
    let (etcd, pki) = tls_cluster(&dir, 1);
    let other = pki::generate(&dir.path().join("other"), &["127.0.0.1".into()]).unwrap();
    let wrong_ca = EtcdTls { cacert: Some(other.ca.clone()), ..client_tls(&pki) };
    let err = etcd_store(&etcd, wrong_ca).check().unwrap_err();
    assert!(matches!(err, StoreError::Tls { .. }), "wrong CA: {err}");
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");
    let no_client_cert = EtcdTls { cacert: Some(pki.ca.clone()), cert: None, key: None };
    let err = etcd_store(&etcd, no_client_cert).check().unwrap_err();
    assert!(matches!(err, StoreError::Tls { .. }), "missing client certificate: {err}");
    let missing = EtcdTls { cacert: Some(dir.path().join("nope.pem")), ..client_tls(&pki) };
    let Err(err) = DatastoreConf::parse(&etcd.endpoint(), missing).unwrap().open() else {
        panic!("opened without its CA")
    };
    assert!(err.to_string().contains("--etcd-cacert") && err.to_string().contains("nope.pem"), "{err}");
    etcd_store(&etcd, client_tls(&pki)).check().unwrap();
}

/// `f` until it succeeds; only "unavailable" errors are tolerated, for at most 15 s. A write
/// in flight when the leader dies times out with its outcome unknown (etcd's own clients
/// behave the same), so callers retry idempotent writes.
fn until_ok<T>(what: &str, mut f: impl FnMut() -> Result<T, StoreError>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if e.is_unavailable() && Instant::now() < deadline => {}
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

#[test]
fn etcd_cluster_survives_losing_a_member() {
    let dir = TempDir::new("etcd-3");
    let (mut etcd, pki) = tls_cluster(&dir, 3);
    let store = etcd_store(&etcd, client_tls(&pki));
    store.put("/m/before", b"1", None).unwrap();
    let rev = store.list("/m/").unwrap().revision;
    let mut w = store.watch("/m/", rev).unwrap();
    // Each member in turn, the leader among them: the others carry on.
    for victim in 0..3 {
        etcd.kill(victim);
        for i in 0..10 {
            let key = format!("/m/{victim}-{i}");
            until_ok(&key, || store.put(&key, b"x", None));
            assert_eq!(until_ok(&key, || store.get(&key)).unwrap().value, b"x");
        }
        let lease = until_ok("grant", || store.lease_grant(Duration::from_secs(10)));
        assert!(until_ok("keepalive", || store.lease_keepalive(lease)));
        etcd.restart(victim);
    }
    assert_eq!(until_ok("list", || store.list("/m/")).entries.len(), 31);
    // The watch was on a member that died at some point: it ends, and a new one catches up.
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen < 30 && Instant::now() < deadline {
        match w.next() {
            Ok(events) => seen += events.len(),
            Err(e) => {
                assert!(e.is_unavailable(), "{e}");
                w = until_ok("rewatch", || store.watch("/m/", rev));
                seen = 0;
            }
        }
    }
    assert_eq!(seen, 30, "every write after the first is seen by the watch");
}

#[test]
fn etcd_leases_expire() {
    let etcd = EtcdCluster::start();
    leases_expire(etcd_store(&etcd, EtcdTls::default()).as_ref());
}

#[test]
fn etcd_outage_is_an_unavailable_error_and_watches_end() {
    let mut etcd = EtcdCluster::start();
    let store = etcd_store(&etcd, EtcdTls::default());
    let rev = store.list("/").unwrap().revision;
    let mut w = store.watch("/o/", rev).unwrap();
    etcd.kill(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        match w.next() {
            Err(e) => break e,
            Ok(_) => assert!(Instant::now() < deadline, "watch did not notice the server going away"),
        }
    };
    assert!(err.is_unavailable(), "{err}");
    let err = store.put("/o/k", b"", None).unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    etcd.restart(0);
    // The client reconnects on its next call; the first may still meet the old connection.
    until_ok("put after the restart", || store.put("/o/k", b"back", None));
    assert_eq!(store.get("/o/k").unwrap().unwrap().value, b"back");
}
