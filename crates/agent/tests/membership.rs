//! Subnet leases through the datastore, against the file store and a real etcd: unique
//! under concurrent joins, kept across restarts, renewed, released on leave.

mod support;

use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use support::{EtcdCluster, TempDir, etcd_store};
use twill_agent::layout::{self, subnet_key};
use twill_agent::membership::{self, MemberConf, MemberError, Subnets};
use twill_agent::record::BackendKind;
use twill_agent::registry::Registry;
use twill_agent::store::{Datastore, FileStore};
use twill_agent::subnet::{SubnetError, SubnetPool};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn conf(node: &str, cluster: &str) -> MemberConf {
    MemberConf {
        node: node.into(),
        node_ip: "10.99.0.1".parse().unwrap(),
        node_ip6: None,
        pool: SubnetPool::new(net(cluster), 24).unwrap(),
        pool6: Some(SubnetPool::new(net("fd00:10:244::/56"), 64).unwrap()),
        backend: BackendKind::Vxlan,
        vtep_mac: Some([2, 0, 0, 0, 0, 1]),
        bgp: None,
        http: None,
        ttl: Duration::from_secs(30),
        labels: Default::default(),
    }
}

fn suite(store: Arc<dyn Datastore>) {
    concurrent_joins_get_unique_subnets(store.clone());
    restart_within_ttl_readopts(store.as_ref());
    prior_subnet_is_preferred(store.as_ref());
    renewal_repairs_lost_lease_and_claims(store.as_ref());
    leave_releases_everything(store.as_ref());
    full_pool_is_an_error(store.as_ref());
}

fn concurrent_joins_get_unique_subnets(store: Arc<dyn Datastore>) {
    let joined: Vec<(IpNet, Option<IpNet>)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|i| {
                let store = store.clone();
                s.spawn(move || {
                    let m = membership::join(
                        store.as_ref(),
                        &conf(&format!("c{i}"), "10.1.0.0/21"),
                        &Subnets::default(),
                    )
                    .unwrap();
                    (m.subnet, m.subnet6)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut v4: Vec<IpNet> = joined.iter().map(|j| j.0).collect();
    let mut v6: Vec<IpNet> = joined.iter().filter_map(|j| j.1).collect();
    v4.sort();
    v4.dedup();
    v6.sort();
    v6.dedup();
    assert_eq!((v4.len(), v6.len()), (6, 6), "{joined:?}");
    let nodes = Registry::new(store.as_ref()).nodes().unwrap();
    let mine: Vec<_> = nodes.items.iter().filter(|n| n.name.starts_with('c')).collect();
    assert_eq!(mine.len(), 6);
    assert!(mine.iter().all(|n| n.vtep_mac.as_deref() == Some("02:00:00:00:00:01") && n.subnet6.is_some()));
}

fn restart_within_ttl_readopts(store: &dyn Datastore) {
    let c = conf("r1", "10.2.0.0/16");
    let first = membership::join(store, &c, &Subnets::default()).unwrap();
    membership::join(store, &conf("r2", "10.2.0.0/16"), &Subnets::default()).unwrap();
    // Crash: no leave; the new process knows nothing (empty state dir).
    let second = membership::join(store, &c, &Subnets::default()).unwrap();
    assert_eq!((second.subnet, second.subnet6), (first.subnet, first.subnet6));
    assert_ne!(second.lease, first.lease);
    // The crashed process's lease running out no longer takes the subnet away.
    store.lease_revoke(first.lease).unwrap();
    let owner = store.get(&subnet_key(second.subnet)).unwrap().expect("claim survives the old lease");
    assert_eq!(owner.lease, Some(second.lease));
    assert!(store.get(&layout::node_key("r1")).unwrap().is_some());
}

fn prior_subnet_is_preferred(store: &dyn Datastore) {
    let prior = Subnets { subnet: Some(net("10.3.7.0/24")), subnet6: None };
    let m = membership::join(store, &conf("p1", "10.3.0.0/16"), &prior).unwrap();
    assert_eq!(m.subnet, net("10.3.7.0/24"));
    // Taken by now: the next node with the same memory gets another one.
    let m2 = membership::join(store, &conf("p2", "10.3.0.0/16"), &prior).unwrap();
    assert_eq!(m2.subnet, net("10.3.0.0/24"));
}

fn renewal_repairs_lost_lease_and_claims(store: &dyn Datastore) {
    let c = conf("n1", "10.4.0.0/16");
    let mut m = membership::join(store, &c, &Subnets::default()).unwrap();
    let before = m;
    let r = membership::renew(store, &c, &mut m, "ready").unwrap();
    assert!(!r.rejoined && !r.changed);
    // Someone deleted the claim: renewal claims the same subnet again.
    store.delete(&subnet_key(m.subnet)).unwrap();
    let r = membership::renew(store, &c, &mut m, "ready").unwrap();
    assert!(!r.changed);
    assert!(store.get(&subnet_key(m.subnet)).unwrap().is_some());
    // The lease expired (a long outage): renewal joins again, same subnets.
    store.lease_revoke(m.lease).unwrap();
    let r = membership::renew(store, &c, &mut m, "ready").unwrap();
    assert!(r.rejoined && !r.changed, "{r:?}");
    assert_eq!((m.subnet, m.subnet6), (before.subnet, before.subnet6));
    assert_ne!(m.lease, before.lease);
    let rec = Registry::new(store).node("n1").unwrap().expect("node record back");
    assert_eq!(rec.subnet, before.subnet);
}

fn leave_releases_everything(store: &dyn Datastore) {
    let c = conf("l1", "10.5.0.0/16");
    let m = membership::join(store, &c, &Subnets::default()).unwrap();
    assert!(membership::leave(store, &c, &m).is_empty());
    assert_eq!(store.get(&layout::node_key("l1")).unwrap(), None);
    assert_eq!(store.get(&subnet_key(m.subnet)).unwrap(), None);
    assert_eq!(store.get(&subnet_key(m.subnet6.unwrap())).unwrap(), None);
    assert!(!store.lease_keepalive(m.lease).unwrap());
    // Leaving twice is harmless.
    assert!(membership::leave(store, &c, &m).is_empty());
}

fn full_pool_is_an_error(store: &dyn Datastore) {
    membership::join(store, &conf("f1", "10.6.0.0/24"), &Subnets::default()).unwrap();
    let e = membership::join(store, &conf("f2", "10.6.0.0/24"), &Subnets::default()).unwrap_err();
    assert!(matches!(e, MemberError::Subnet(SubnetError::Exhausted { .. })), "{e}");
    // The failed join left nothing behind.
    assert_eq!(store.get(&layout::node_key("f2")).unwrap(), None);
}

#[test]
fn file_store_membership() {
    let dir = TempDir::new("member");
    suite(Arc::new(FileStore::open(dir.path()).unwrap()));
}

#[test]
fn etcd_membership() {
    let etcd = EtcdCluster::start();
    suite(etcd_store(&etcd, None));
}
