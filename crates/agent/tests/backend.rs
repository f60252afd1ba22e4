//! Kernel tier: the backends' steps in a namespace of their own (the underlay is one end of
//! a veth pair): every step is idempotent, `sync` removes what belongs to no peer,
//! `remove_peer` undoes `ensure_peer`, a restarted agent adopts the vxlan device and one with
//! another node address recreates it.

mod support;

use std::net::IpAddr;

use support::TempDir;
use testkit::TestNs;
use twill_agent::backend::{self, Applied, Backend, BackendConf, BackendError, Local, Peer, vxlan};
use twill_agent::record::BackendKind;

/// A node namespace whose `eth0` (10.98.0.1/24, and 10.98.0.2) leads to a second namespace.
fn node(tag: &str) -> (TestNs, TestNs) {
    testkit::require_privileges();
    let (ns, far) = (TestNs::new(tag), TestNs::new(&format!("{tag}f")));
    let fh = far.handle();
    fh.veth_add("peer0", "eth0", Some(ns.ns()), None, None, None).unwrap();
    let p = fh.link_get("peer0").unwrap().unwrap();
    fh.link_set_up(p.index, true).unwrap();
    let h = ns.handle();
    let eth0 = h.link_get("eth0").unwrap().unwrap();
    for a in ["10.98.0.1/24", "10.98.0.2/24"] {
        h.addr_add(eth0.index, a.parse().unwrap(), false).unwrap();
    }
    h.link_set_up(eth0.index, true).unwrap();
    (ns, far)
}

fn build(ns: &TestNs, kind: BackendKind, node_ip: &str, state: &TempDir) -> Box<dyn Backend> {
    let conf = BackendConf {
        node: "node-1".into(),
        node_ip: node_ip.parse().unwrap(),
        underlay: "eth0".into(),
        state_dir: state.path().join("state"),
        bgp: None,
    };
    // The backend's netlink socket is opened inside the namespace and used from here.
    ns.ns().run(|| backend::build(kind, &conf)).unwrap().unwrap()
}

fn local() -> Local {
    Local {
        node: "node-1".into(),
        node_ip: "10.98.0.1".parse().unwrap(),
        subnet: "10.244.1.0/24".parse().unwrap(),
        subnet6: Some("fd00:10:244:1::/64".parse().unwrap()),
    }
}

fn peer(n: u8, v6_hop: bool) -> Peer {
    Peer {
        name: format!("node-{n}"),
        node_ip: format!("10.98.0.{}", 10 + n).parse().unwrap(),
        node_ip6: v6_hop.then(|| format!("fd00:98::{n}").parse::<IpAddr>().unwrap()),
        subnet: format!("10.244.{n}.0/24").parse().unwrap(),
        subnet6: Some(format!("fd00:10:244:{n}::/64").parse().unwrap()),
        vtep_mac: Some([0x0e, n, n, n, n, n]),
        bgp: None,
    }
}

fn applied(added: usize, removed: usize) -> Applied {
    Applied { added, removed }
}

#[test]
fn vxlan_steps_are_idempotent_and_reversible() {
    let (ns, _far) = node("bvx");
    let state = TempDir::new("bvx");
    let mut b = build(&ns, BackendKind::Vxlan, "10.98.0.1", &state);
    assert_eq!((b.kind(), b.pod_mtu()), (BackendKind::Vxlan, 1450));
    assert!(matches!(b.sync(&[peer(2, false)]), Err(BackendError::NotSetUp { .. })));
    // Device + two VTEP addresses, then nothing.
    assert_eq!(b.ensure_local(&local()).unwrap(), applied(3, 0));
    assert_eq!(b.ensure_local(&local()).unwrap(), applied(0, 0));
    // FDB + neighbour and route per family.
    assert_eq!(b.ensure_peer(&peer(2, false)).unwrap(), applied(5, 0));
    assert_eq!(b.ensure_peer(&peer(2, false)).unwrap(), applied(0, 0));
    assert_eq!(b.sync(&[peer(2, false), peer(3, false)]).unwrap(), applied(5, 0));
    assert_eq!(b.sync(&[peer(3, false)]).unwrap(), applied(0, 5));
    assert_eq!(b.remove_peer(&peer(3, false)).unwrap(), applied(0, 5));
    assert_eq!(b.remove_peer(&peer(3, false)).unwrap(), applied(0, 0));
    assert!(ns.exec_ok(&["ip", "route", "show", "proto", "116"]).trim().is_empty());

    // A restarted agent adopts the device; one with another node address recreates it.
    let index = ns.handle().link_get(vxlan::DEVICE).unwrap().unwrap().index;
    let mut again = build(&ns, BackendKind::Vxlan, "10.98.0.1", &state);
    assert_eq!(again.ensure_local(&local()).unwrap(), applied(0, 0));
    assert_eq!(ns.handle().link_get(vxlan::DEVICE).unwrap().unwrap().index, index);
    let mut moved = build(&ns, BackendKind::Vxlan, "10.98.0.2", &state);
    assert_eq!(moved.ensure_local(&local()).unwrap(), applied(3, 1));
    let details = ns.exec_ok(&["ip", "-d", "link", "show", vxlan::DEVICE]);
    assert!(details.contains("vxlan id 1 local 10.98.0.2 dev eth0"), "{details}");
    assert!(details.contains("dstport 4789 nolearning"), "{details}");
}

#[test]
fn host_gw_routes_via_peers() {
    let (ns, _far) = node("bhg");
    let state = TempDir::new("bhg");
    let mut b = build(&ns, BackendKind::HostGw, "10.98.0.1", &state);
    assert_eq!((b.pod_mtu(), b.vtep_mac()), (1500, None));
    assert_eq!(b.ensure_local(&local()).unwrap(), applied(0, 0));
    // Without an IPv6 next hop only the IPv4 subnet is routed.
    assert_eq!(b.ensure_peer(&peer(2, false)).unwrap(), applied(1, 0));
    let h = ns.handle();
    let eth0 = h.link_get("eth0").unwrap().unwrap().index;
    h.addr_add(eth0, "fd00:98::1/64".parse().unwrap(), true).unwrap();
    assert_eq!(b.sync(&[peer(2, true), peer(3, true)]).unwrap(), applied(3, 0));
    let routes = ns.exec_ok(&["ip", "-6", "route", "show", "proto", "116"]);
    assert!(routes.contains("fd00:10:244:3::/64 via fd00:98::3 dev eth0"), "{routes}");
    assert_eq!(b.sync(&[]).unwrap(), applied(0, 4));
    // Someone else's routes are not touched.
    ns.exec_ok(&["ip", "route", "add", "10.77.0.0/16", "via", "10.98.0.99"]);
    assert_eq!(b.sync(&[]).unwrap(), applied(0, 0));
    assert!(ns.exec_ok(&["ip", "route"]).contains("10.77.0.0/16 via 10.98.0.99"));
}

#[test]
fn missing_underlay_is_named() {
    testkit::require_privileges();
    let ns = TestNs::new("bnu");
    let state = TempDir::new("bnu");
    let conf = BackendConf {
        node: "node-1".into(),
        node_ip: "10.98.0.1".parse().unwrap(),
        underlay: "eth9".into(),
        state_dir: state.path().into(),
        bgp: None,
    };
    let e = ns.ns().run(|| backend::build(BackendKind::Vxlan, &conf).err()).unwrap().expect("no underlay");
    assert_eq!(e.to_string(), "underlay interface eth9 not found");
    let e = backend::build(BackendKind::Bgp, &conf).err().expect("bgp without settings refused");
    assert_eq!(e.to_string(), "the bgp backend needs its BGP settings");
}

#[test]
fn ensure_forwarding_reports_only_what_was_off() {
    testkit::require_privileges();
    let ns = TestNs::new("fwd");
    let changed = twill_agent::node::ensure_forwarding(ns.ns(), true).unwrap();
    assert_eq!(changed, ["net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"]);
    assert_eq!(nl::sysctl_get(ns.ns(), "net/ipv4/ip_forward").unwrap(), "1");
    assert_eq!(nl::sysctl_get(ns.ns(), "net/ipv6/conf/all/forwarding").unwrap(), "1");
    assert!(twill_agent::node::ensure_forwarding(ns.ns(), true).unwrap().is_empty());
}
