//! Kernel tier: three nodes in namespaces, vxlan, dual-stack, etcd running in the underlay
//! namespace. FDB, neighbour and route entries appear for every peer and carry real
//! packets; drift is repaired; an etcd outage leaves routes in place and the agents catch up
//! afterwards; restarted nodes keep their subnets.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::cluster::{Cluster, Store, ping, twill_routes};
use twill_agent::backend::vxlan::{DEVICE, vtep_mac_for};

type Entries = (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>);

/// FDB (`mac dst`), permanent neighbours (`ip mac`) and routes (`dst via gw`) of node `i`'s
/// vxlan device.
fn vxlan_entries(c: &Cluster, i: usize) -> Option<Entries> {
    let h = c.nodes[i].ns.handle();
    let dev = h.link_get(DEVICE).ok()??;
    let fdb = h.fdb_list(Some(dev.index)).ok()?;
    let fdb = fdb.iter().filter_map(|f| Some(format!("{} {}", nl::format_mac(&f.mac), f.dst?))).collect();
    let neigh = h.neigh_list(Some(dev.index), None).ok()?;
    let neigh = neigh
        .iter()
        .filter(|n| n.state & nl::neigh::NUD_PERMANENT != 0)
        .filter_map(|n| Some(format!("{} {}", n.ip, nl::format_mac(&n.mac?))))
        .collect();
    let routes = twill_routes(&c.nodes[i].ns)
        .into_iter()
        .filter(|(_, _, oif)| *oif == dev.index)
        .map(|(dst, gw, _)| format!("{dst} via {gw}"))
        .collect();
    Some((fdb, neigh, routes))
}

fn expected_entries(c: &Cluster, i: usize, peers: &[usize]) -> Entries {
    let (mut fdb, mut neigh, mut routes) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for j in peers.iter().filter(|j| **j != i) {
        let r = c.record(*j);
        let mac = r.vtep_mac.clone().expect("vtep mac published");
        fdb.insert(format!("{mac} {}", r.node_ip));
        for net in [Some(r.subnet), r.subnet6].into_iter().flatten() {
            neigh.insert(format!("{} {mac}", net.network()));
            routes.insert(format!("{net} via {}", net.network()));
        }
    }
    (fdb, neigh, routes)
}

fn wait_entries(c: &Cluster, i: usize, peers: &[usize]) {
    let want = expected_entries(c, i, peers);
    c.eventually(i, &format!("node {i} vxlan entries {want:?}"), || {
        vxlan_entries(c, i).as_ref() == Some(&want)
    });
}

fn vtep_ip(c: &Cluster, i: usize) -> String {
    c.record(i).subnet.network().to_string()
}

#[test]
fn vxlan_cluster_on_etcd() {
    let mut c = Cluster::new("vx", 3, "vxlan", Store::Etcd, 6);
    c.extra = vec!["--cluster-cidr6".into(), "fd00:10:244::/56".into(), "--log-format".into(), "json".into()];
    for i in 0..3 {
        c.start(i);
    }
    for i in 0..3 {
        c.wait_ready(i);
    }

    // The device: flannel's layout, MTU of the underlay minus 50, the published MAC.
    for i in 0..3 {
        let r = c.record(i);
        let mac = vtep_mac_for(&c.nodes[i].name);
        assert_eq!(r.vtep_mac.as_deref(), Some(nl::format_mac(&mac).as_str()));
        assert!(r.subnet6.is_some(), "{r:?}");
        let h = c.nodes[i].ns.handle();
        let dev = h.link_get(DEVICE).unwrap().expect("vxlan device");
        assert_eq!((dev.kind.as_deref(), dev.mtu, dev.mac, dev.up), (Some("vxlan"), 1450, Some(mac), true));
        let addrs: Vec<String> = h
            .addr_list(Some(dev.index))
            .unwrap()
            .iter()
            .filter(|a| a.scope == 0)
            .map(|a| a.net.to_string())
            .collect();
        assert!(addrs.contains(&format!("{}/32", r.subnet.network())), "{addrs:?}");
        let conflist =
            std::fs::read_to_string(c.nodes[i].dir.path().join("net.d/10-twill.conflist")).unwrap();
        assert!(conflist.contains("\"mtu\": 1450"), "{conflist}");
    }
    for i in 0..3 {
        wait_entries(&c, i, &[0, 1, 2]);
    }
    assert!(ping(&c.nodes[0].ns, &vtep_ip(&c, 1)), "no vxlan datapath from node 0 to node 1");

    // Drift: a deleted FDB entry, then the whole device, come back.
    let mac1 = c.record(1).vtep_mac.unwrap();
    c.nodes[0].ns.exec_ok(&["bridge", "fdb", "del", &mac1, "dev", DEVICE, "dst", &c.nodes[1].ip]);
    wait_entries(&c, 0, &[0, 1, 2]);
    c.nodes[0].ns.exec_ok(&["ip", "link", "del", DEVICE]);
    wait_entries(&c, 0, &[0, 1, 2]);
    assert!(ping(&c.nodes[0].ns, &vtep_ip(&c, 2)), "datapath after the device was recreated");

    // etcd outage: routes stay, the node stays ready; afterwards the agents catch up.
    let (before, target) = (vxlan_entries(&c, 0), vtep_ip(&c, 1));
    c.etcd.as_mut().unwrap().kill(0);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(vxlan_entries(&c, 0), before, "entries stay while the datastore is away");
    assert_eq!(c.http_get(0, "/readyz").map(|r| r.0), Some(200));
    assert!(ping(&c.nodes[0].ns, &target), "datapath during the outage");
    c.etcd.as_mut().unwrap().restart(0);
    let subnet2 = c.record(2).subnet;
    c.stop(2);
    wait_entries(&c, 0, &[0, 1]);
    wait_entries(&c, 1, &[0, 1]);

    // A node that left comes back with its subnet; one that crashed and restarts at once
    // gets its subnet back from the claim it still holds.
    c.start(2);
    c.wait_ready(2);
    assert_eq!(c.record(2).subnet, subnet2);
    let subnet1 = c.record(1).subnet;
    c.crash(1);
    c.start(1);
    c.wait_ready(1);
    assert_eq!(c.record(1).subnet, subnet1);
    for i in 0..3 {
        wait_entries(&c, i, &[0, 1, 2]);
    }
    assert!(ping(&c.nodes[2].ns, &vtep_ip(&c, 1)));
}
