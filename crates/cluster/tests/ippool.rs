//! Cluster-wide reservations (`twill_cluster::ippool`) against the file store and a real
//! etcd: lowest-first allocation, idempotent ADD, a pod's new sandbox taking its address
//! over, DEL with its claim, GC by node and CNI network, overlapping ranges, separate
//! `network_name` pools, unreadable records, orphans freed by compare-and-swap, and many
//! threads allocating from one range at once without a duplicate.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipam::{PoolRange, parse_range};
use ipnet::IpNet;
use testkit::{EtcdCluster, TempDir};
use twill_cluster::ippool::orphans::{Cluster, Tracker};
use twill_cluster::ippool::{self, AllocRequest, Holder, IpPoolError};
use twill_cluster::store::{Datastore, DatastoreConf, EtcdTls, FileStore};

fn range(text: &str) -> PoolRange {
    let (net, start, end) = parse_range(text).unwrap();
    PoolRange::new(net, start, end, &[]).unwrap()
}

fn holder(cid: &str, pod: &str, node: &str) -> Holder {
    Holder {
        pod: pod.into(),
        container_id: cid.into(),
        ifname: "net1".into(),
        node: node.into(),
        cni_network: "macnet".into(),
    }
}

fn alloc(s: &dyn Datastore, net: &str, ranges: &[PoolRange], h: Holder) -> Result<Vec<IpAddr>, IpPoolError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    ippool::allocate(s, &AllocRequest { network: net, ranges, overlapping: true, holder: h, deadline })
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn all_ips(s: &dyn Datastore) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> =
        ippool::pools(s).unwrap().into_iter().flat_map(|p| p.reservations).map(|r| r.record.ip).collect();
    v.sort();
    v
}

fn suite(s: Arc<dyn Datastore>) {
    lowest_first_idempotent_and_freed(s.as_ref());
    takeover_by_the_same_pod(s.as_ref());
    overlapping_ranges_and_network_names(s.as_ref());
    gc_by_node_and_network(s.as_ref());
    exhaustion_is_named(s.as_ref());
    orphans_are_freed_once_due(s.as_ref());
    concurrent_allocations_are_unique(s);
}

fn lowest_first_idempotent_and_freed(s: &dyn Datastore) {
    let r = [range("10.10.0.0/29"), range("fd10::/64")];
    let a = alloc(s, "n1", &r, holder("a", "default/a", "node-1")).unwrap();
    assert_eq!(a, [ip("10.10.0.1"), ip("fd10::1")]);
    assert_eq!(alloc(s, "n1", &r, holder("a", "default/a", "node-1")).unwrap(), a, "ADD repeated");
    let b = alloc(s, "n1", &r, holder("b", "default/b", "node-2")).unwrap();
    assert_eq!(b, [ip("10.10.0.2"), ip("fd10::2")]);
    let held = ippool::held(s, "n1", "a", "net1").unwrap();
    assert_eq!(held.len(), 2);
    assert_eq!(ippool::release(s, "n1", "a", "net1").unwrap().len(), 2);
    assert!(ippool::release(s, "n1", "a", "net1").unwrap().is_empty(), "DEL repeated");
    let view = ippool::network_view(s, "n1").unwrap();
    assert_eq!(view.claims.len(), 2, "only b's claims remain: {:?}", view.claims.keys());
    // The freed lowest address is handed out again.
    assert_eq!(alloc(s, "n1", &r, holder("c", "default/c", "node-1")).unwrap()[0], ip("10.10.0.1"));
}

fn takeover_by_the_same_pod(s: &dyn Datastore) {
    let r = [range("10.11.0.0/24")];
    let first = alloc(s, "", &r, holder("old", "ns1/web", "node-1")).unwrap();
    let again = alloc(s, "", &r, holder("new", "ns1/web", "node-1")).unwrap();
    assert_eq!(first, again, "Whereabouts keys an allocation by pod and interface");
    assert!(ippool::release(s, "", "old", "net1").unwrap().is_empty(), "the old sandbox's DEL frees nothing");
    let held = ippool::held(s, "", "new", "net1").unwrap();
    assert_eq!(held[0].record.holder.container_id, "new");
    let claim = ippool::network_view(s, "").unwrap().claims[&first[0]].clone();
    assert_eq!(claim.record.holder.container_id, "new", "the claim follows");
    assert_eq!(ippool::release(s, "", "new", "net1").unwrap(), first);
}

fn overlapping_ranges_and_network_names(s: &dyn Datastore) {
    let wide = [range("10.12.0.0/24")];
    let narrow = [range("10.12.0.0/28")];
    let a = alloc(s, "", &wide, holder("w1", "d/w1", "node-1")).unwrap();
    let b = alloc(s, "", &narrow, holder("n1", "d/n1", "node-1")).unwrap();
    assert_ne!(a, b, "overlapping ranges never give one address twice");
    // Without the check, the other range's reservations do not count.
    let req = AllocRequest {
        network: "",
        ranges: &narrow,
        overlapping: false,
        holder: holder("n2", "d/n2", "node-1"),
        deadline: Instant::now() + Duration::from_secs(5),
    };
    assert_eq!(ippool::allocate(s, &req).unwrap(), [ip("10.12.0.1")]);
    // A named network is a pool of its own over the same range.
    assert_eq!(alloc(s, "blue", &wide, holder("b1", "d/b1", "node-1")).unwrap(), [ip("10.12.0.1")]);
    let nets: Vec<String> =
        ippool::pools(s).unwrap().iter().map(|p| format!("{}:{}", p.network, p.range)).collect();
    assert!(nets.contains(&"blue:10.12.0.0/24".to_string()), "{nets:?}");
    let dup = alloc(s, "", &[range("10.13.0.0/24"), range("10.13.0.5/24")], holder("x", "d/x", "node-1"));
    assert!(matches!(dup, Err(IpPoolError::DuplicateRange { .. })), "{dup:?}");
    assert!(matches!(
        alloc(s, "Bad_Name", &wide, holder("x", "d/x", "n")),
        Err(IpPoolError::NetworkName { .. })
    ));
    for (net, id) in [("", "w1"), ("", "n1"), ("", "n2"), ("blue", "b1")] {
        ippool::release(s, net, id, "net1").unwrap();
    }
}

fn gc_by_node_and_network(s: &dyn Datastore) {
    let r = [range("10.14.0.0/24")];
    for (id, node) in [("g1", "node-1"), ("g2", "node-1"), ("g3", "node-2")] {
        alloc(s, "gc", &r, holder(id, &format!("d/{id}"), node)).unwrap();
    }
    let mut other = holder("g4", "d/g4", "node-1");
    other.cni_network = "another".into();
    alloc(s, "gc", &r, other).unwrap();
    let valid = vec![("g1".to_string(), "net1".to_string())];
    let freed = ippool::gc(s, "gc", "macnet", "node-1", &valid).unwrap();
    assert_eq!(freed, [ip("10.14.0.2")], "only node-1's stale reservation of macnet");
    let left: BTreeSet<String> = ippool::network_view(s, "gc")
        .unwrap()
        .reservations
        .iter()
        .map(|r| r.record.holder.container_id.clone())
        .collect();
    assert_eq!(left, ["g1", "g3", "g4"].map(String::from).into());
    for id in ["g1", "g3", "g4"] {
        ippool::release(s, "gc", id, "net1").unwrap();
    }
}

fn exhaustion_is_named(s: &dyn Datastore) {
    let r = [range("10.15.0.0/30")]; // .1 and .2
    alloc(s, "ex", &r, holder("e1", "d/e1", "n")).unwrap();
    alloc(s, "ex", &r, holder("e2", "d/e2", "n")).unwrap();
    let err = alloc(s, "ex", &r, holder("e3", "d/e3", "n")).unwrap_err();
    assert!(matches!(err, IpPoolError::Exhausted { .. }), "{err}");
    assert!(err.to_string().contains("10.15.0.1-10.15.0.2"), "{err}");
    // An unreadable record keeps its address.
    let key =
        twill_cluster::layout::ip_reservation_key("ex", "10.15.0.0/30".parse().unwrap(), ip("10.15.0.1"));
    ippool::release(s, "ex", "e1", "net1").unwrap();
    s.put(&key, b"garbage", None).unwrap();
    let err = alloc(s, "ex", &r, holder("e3", "d/e3", "n")).unwrap_err();
    assert!(matches!(err, IpPoolError::Exhausted { .. }), "{err}");
    assert_eq!(
        ippool::pools(s).unwrap().iter().find(|p| p.network == "ex").unwrap().unreadable,
        std::slice::from_ref(&key)
    );
    s.delete(&key).unwrap();
    ippool::release(s, "ex", "e2", "net1").unwrap();
}

fn orphans_are_freed_once_due(s: &dyn Datastore) {
    let r = [range("10.16.0.0/24")];
    alloc(s, "or", &r, holder("live", "default/live", "node-1")).unwrap();
    alloc(s, "or", &r, holder("ghost", "default/ghost", "node-9")).unwrap();
    let cluster = Cluster {
        nodes: ["node-1".to_string()].into(),
        pods: [("default/live".to_string(), "node-1".to_string())].into(),
    };
    let mut t = Tracker::default();
    let t0 = Instant::now();
    let far = ippool::now_secs() + 3600;
    let views = ippool::networks(s).unwrap();
    let or = views.iter().find(|v| v.network == "or").unwrap();
    assert!(t.due(&or.reservations, &cluster, t0, far, Duration::from_secs(5)).is_empty());
    let due = t.due(&or.reservations, &cluster, t0 + Duration::from_secs(6), far, Duration::from_secs(5));
    assert_eq!(due.len(), 1);
    assert!(ippool::free(s, or, due[0].0).unwrap());
    assert!(!ippool::free(s, or, due[0].0).unwrap(), "freed once: the second CAS finds it gone");
    let left = ippool::network_view(s, "or").unwrap();
    assert_eq!(left.reservations.len(), 1);
    assert_eq!(left.claims.len(), 1);
    ippool::release(s, "or", "live", "net1").unwrap();
}

/// 8 threads × 20 allocations on one /24 at once: 160 distinct addresses.
fn concurrent_allocations_are_unique(s: Arc<dyn Datastore>) {
    let r = Arc::new(vec![range("10.17.0.0/24")]);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (s, r) = (s.clone(), r.clone());
            std::thread::spawn(move || {
                (0..20)
                    .map(|i| {
                        let id = format!("t{t}-{i}");
                        alloc(s.as_ref(), "cc", &r, holder(&id, &format!("d/{id}"), &format!("node-{t}")))
                            .unwrap()[0]
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let got: Vec<IpAddr> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let unique: BTreeSet<IpAddr> = got.iter().copied().collect();
    assert_eq!(unique.len(), 160, "duplicates among {got:?}");
    let net: IpNet = "10.17.0.0/24".parse().unwrap();
    assert!(unique.iter().all(|i| net.contains(i)));
    let stored: Vec<IpAddr> = all_ips(s.as_ref()).into_iter().filter(|i| net.contains(i)).collect();
    assert_eq!(stored.len(), 160);
}

#[test]
fn file_store() {
    let dir = TempDir::new("ippool-file");
    suite(Arc::new(FileStore::open(dir.path()).unwrap()));
}

#[test]
fn etcd_store() {
    let etcd = EtcdCluster::start();
    suite(DatastoreConf::parse(&etcd.endpoint(), EtcdTls::default()).unwrap().open().unwrap());
}

#[test]
fn etcd_down_is_unavailable() {
    let mut etcd = EtcdCluster::start();
    let s = DatastoreConf::parse(&etcd.endpoint(), EtcdTls::default()).unwrap().open().unwrap();
    alloc(s.as_ref(), "", &[range("10.18.0.0/24")], holder("a", "d/a", "n")).unwrap();
    etcd.kill(0);
    let err = alloc(s.as_ref(), "", &[range("10.18.0.0/24")], holder("b", "d/b", "n")).unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    etcd.restart(0);
    let b = alloc(s.as_ref(), "", &[range("10.18.0.0/24")], holder("b", "d/b", "n")).unwrap();
    assert_eq!(b, [ip("10.18.0.2")]);
}
