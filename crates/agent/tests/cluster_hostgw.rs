//! Kernel tier: three nodes in namespaces on one underlay bridge, host-gw, file datastore.
//! Leases are unique, routes to every peer appear, drift is repaired, a node that leaves
//! or crashes disappears from its peers, a restarted node keeps its subnet.

mod support;

use std::time::Duration;

use support::cluster::{Cluster, Store, twill_routes};

/// What node `i` should route: every other node's subnet via its node address on eth0.
fn expected_routes(c: &Cluster, i: usize, peers: &[usize]) -> Vec<(String, String, u32)> {
    let eth0 = c.nodes[i].ns.handle().link_get("eth0").unwrap().unwrap().index;
    let mut v: Vec<_> = peers
        .iter()
        .filter(|j| **j != i)
        .map(|j| (c.record(*j).subnet.to_string(), c.nodes[*j].ip.clone(), eth0))
        .collect();
    v.sort();
    v
}

fn wait_routes(c: &Cluster, i: usize, peers: &[usize]) {
    let want = expected_routes(c, i, peers);
    c.eventually(i, &format!("node {i} routes {want:?}"), || twill_routes(&c.nodes[i].ns) == want);
}

#[test]
fn host_gw_cluster_on_the_file_store() {
    let mut c = Cluster::new("hg", 3, "host-gw", Store::File, 4);
    c.start(0);
    // The same settings from a --config file.
    c.start_from_file(1);
    c.start(2);
    for i in 0..3 {
        c.wait_ready(i);
    }
    // systemd (Type=notify) hears of readiness when /readyz turns 200.
    let notified = c.notifications(1);
    assert!(notified.contains("READY=1") && notified.contains("STATUS=ready: node node-1"), "{notified}");

    // Unique leases, published in the records and the network lists.
    let records = c.records();
    let mut subnets: Vec<String> = records.iter().map(|r| r.subnet.to_string()).collect();
    subnets.sort();
    subnets.dedup();
    assert_eq!(subnets.len(), 3, "{records:?}");
    for i in 0..3 {
        let list = std::fs::read_to_string(c.nodes[i].dir.path().join("net.d/10-twill.conflist")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&list).unwrap();
        assert_eq!(v["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], c.record(i).subnet.to_string());
        assert_eq!(v["plugins"][0]["ipMasq"], false);
        assert!(c.nodes[i].dir.path().join("net.d/99-loopback.conflist").is_file());
    }

    // Routes to every peer, and a real packet over one of them.
    for i in 0..3 {
        wait_routes(&c, i, &[0, 1, 2]);
    }
    let std::net::IpAddr::V4(net1) = c.record(1).subnet.network() else { panic!("IPv4 subnet") };
    let target = std::net::Ipv4Addr::from(u32::from(net1) + 1).to_string();
    let h1 = c.nodes[1].ns.handle();
    let lo = h1.link_get("lo").unwrap().unwrap().index;
    h1.addr_add(lo, format!("{target}/32").parse().unwrap(), false).unwrap();
    assert!(support::cluster::ping(&c.nodes[0].ns, &target), "node 0 cannot reach {target} on node 1");

    // Masquerade for traffic leaving the cluster, in the node's namespace only.
    let table = c.nodes[0].ns.exec_ok(&["nft", "list", "table", "inet", "twill_agent"]);
    assert!(
        table.contains("ip saddr 10.244.0.0/16 ip daddr != { 10.244.0.0/16, 224.0.0.0/4 } masquerade"),
        "{table}"
    );

    // Drift: a deleted route and a deleted table come back.
    let peer_subnet = c.record(2).subnet.to_string();
    c.nodes[0].ns.exec_ok(&["ip", "route", "del", &peer_subnet]);
    wait_routes(&c, 0, &[0, 1, 2]);
    c.nodes[0].ns.exec_ok(&["nft", "delete", "table", "inet", "twill_agent"]);
    c.eventually(0, "masquerade table repaired", || {
        c.nodes[0].ns.exec(&["nft", "list", "table", "inet", "twill_agent"]).status.success()
    });
    let (status, metrics) = c.http_get(0, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(metrics.contains("twill_peers 2"), "{metrics}");
    assert!(metrics.contains(&format!("subnet=\"{}\"", c.record(0).subnet)), "{metrics}");

    // A node that leaves is gone from the datastore and from its peers' routes.
    let subnet2 = c.record(2).subnet;
    c.stop(2);
    assert!(c.notifications(2).contains("STOPPING=1"));
    assert!(c.records().iter().all(|r| r.name != c.nodes[2].name));
    wait_routes(&c, 0, &[0, 1]);
    wait_routes(&c, 1, &[0, 1]);

    // It comes back with the same subnet.
    c.start(2);
    c.wait_ready(2);
    assert_eq!(c.record(2).subnet, subnet2);
    wait_routes(&c, 0, &[0, 1, 2]);

    // A node that crashes is removed by the others once its lease (4 s) ran out.
    c.crash(1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(twill_routes(&c.nodes[0].ns).len(), 2, "routes stay until the lease expires");
    wait_routes(&c, 0, &[0, 2]);
    wait_routes(&c, 2, &[0, 2]);
    assert!(c.records().iter().all(|r| r.name != c.nodes[1].name));
}
