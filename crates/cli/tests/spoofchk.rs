//! `spoofchk` end to end (issue 16): on a bridge, on ptp and on macvlan, pod m forges pod e's
//! IPv4 and IPv6 source towards pod v, and claims e's addresses with a gratuitous ARP reply
//! and an unsolicited neighbour advertisement. With `spoofchk` none of it lands — v receives
//! nothing from "e" and keeps e's MAC for e's addresses — while e itself still gets through.
//! Without `spoofchk` the same forgeries land, so the test knows its attacks work.

#[path = "support/forge.rs"]
mod forge;
mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use cni_exec::LoadedList;
use forge::{Receiver, arp_claim, na_claim, udp_from};
use netns::NetNs;
use serde_json::{Value, json};
use support::{World, ping};
use testkit::TestNs;

const PORT: u16 = 5099;

struct Pod {
    ns: TestNs,
    v4: IpAddr,
    v6: IpAddr,
    mac: [u8; 6],
}

fn attach(world: &World, net: &LoadedList, id: &str) -> Pod {
    let ns = TestNs::new(&format!("sp{id}"));
    let result = world.add(net, &world.rt(id, &ns));
    let ip = |v6: bool| result.ips.iter().map(|i| i.address.addr()).find(|a| a.is_ipv6() == v6).unwrap();
    let mac = ns.handle().link_get("eth0").unwrap().unwrap().mac.unwrap();
    // IPv6 addresses must leave DAD before they can send.
    ns.exec_ok(&["sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0"]);
    Pod { v4: ip(false), v6: ip(true), mac, ns }
}

/// The MAC `ns` keeps for `ip` on eth0, if any.
fn neighbour(ns: &TestNs, ip: IpAddr) -> Option<String> {
    let out = ns.exec_ok(&["ip", "neigh", "show", &ip.to_string(), "dev", "eth0"]);
    out.split_whitespace().skip_while(|w| *w != "lladdr").nth(1).map(str::to_string)
}

/// `ns` pings `dst`, retried for a few seconds: a host-side veth's link-local address (ptp's
/// IPv6 gateway) answers neighbour solicitations only once its DAD is over.
fn reaches(ns: &TestNs, dst: IpAddr) -> bool {
    (0..5).any(|_| ping(ns, &dst.to_string()))
}

/// Runs every forgery of m against v; returns what landed.
fn forgeries_that_landed(v: &Pod, e: &Pod, m: &Pod) -> Vec<String> {
    // m's own traffic must get through first: a forgery that fails for want of a route or a
    // neighbour would prove nothing.
    for dst in [v.v4, v.v6] {
        assert!(reaches(&m.ns, dst), "m cannot reach {dst} with its own address");
    }
    let rx = Receiver::start(&NetNs::open(v.ns.path()).unwrap(), PORT);
    let m_ns = NetNs::open(m.ns.path()).unwrap();
    let e_ns = NetNs::open(e.ns.path()).unwrap();
    let mut landed = Vec::new();
    for (target, forged) in [(v.v4, e.v4), (v.v6, e.v6)] {
        udp_from(&e_ns, forged, SocketAddr::new(target, PORT), "legit", 3).unwrap();
        assert!(rx.saw("legit", Duration::from_secs(2)), "e's own datagram to {target} never arrived");
        let payload = format!("forged {forged}");
        // A send refused on the way out (the egress check) is a forgery that did not land;
        // the unguarded runs prove the forgeries themselves work.
        let _ = udp_from(&m_ns, forged, SocketAddr::new(target, PORT), &payload, 5);
        if rx.saw(&payload, Duration::from_millis(600)) {
            landed.push(payload);
        }
    }
    // v learns e's MACs, then m claims e's addresses; the kernel's lock time is 1 s.
    assert!(ping(&v.ns, &e.v4.to_string()) && ping(&v.ns, &e.v6.to_string()), "v reaches e");
    std::thread::sleep(Duration::from_millis(1200));
    let IpAddr::V4(e4) = e.v4 else { unreachable!() };
    let IpAddr::V6(e6) = e.v6 else { unreachable!() };
    let _ = arp_claim(&m_ns, "eth0", m.mac, e4.octets());
    let _ = na_claim(&m_ns, "eth0", m.mac, e6);
    std::thread::sleep(Duration::from_millis(300));
    let m_mac = nl::format_mac(&m.mac);
    for ip in [e.v4, e.v6] {
        if neighbour(&v.ns, ip).as_deref() == Some(&m_mac) {
            landed.push(format!("{ip} now at m's MAC"));
        }
    }
    landed
}

/// Three pods on `net`; `spoofchk` decides whether forgeries land.
fn run(world: &World, plugin: Value, spoofchk: bool) -> Vec<String> {
    let mut plugin = plugin;
    plugin["spoofchk"] = json!(spoofchk);
    let net = world.list(json!({"cniVersion": "1.1.0", "name": "spnet", "plugins": [plugin]}));
    let (v, e, m) = (attach(world, &net, "v"), attach(world, &net, "e"), attach(world, &net, "m"));
    let landed = forgeries_that_landed(&v, &e, &m);
    for pod in ["v", "e", "m"] {
        let ns = [&v, &e, &m].into_iter().find(|p| p.ns.name().contains(&format!("sp{pod}"))).unwrap();
        world.runtime.del(&net, &world.rt(pod, &ns.ns)).unwrap_or_else(|err| panic!("del {pod}: {err}"));
    }
    landed
}

fn ipam(subnet: &str, subnet6: &str) -> Value {
    json!({"type": "host-local", "dataDir": "{dir}/ipam", "ranges": [[{"subnet": subnet}], [{"subnet": subnet6}]]})
}

#[test]
fn bridge_pods_cannot_forge_addresses() {
    let world = World::new("spbr", &["bridge", "host-local"], &[]);
    let plugin = json!({"type": "bridge", "bridge": "spbr0", "isGateway": true, "ipam": ipam("10.74.0.0/24", "fd00:74::/64")});
    let open = run(&world, plugin.clone(), false);
    assert_eq!(open.len(), 4, "without spoofchk every forgery lands: {open:?}");
    assert_eq!(run(&world, plugin, true), Vec::<String>::new());
    let guard = world.host.nft_text("bridge", "twill_guard");
    assert!(!guard.contains("spnet/"), "DEL removed every element:\n{guard}");
}

#[test]
fn ptp_pods_cannot_forge_addresses() {
    let world = World::new("spptp", &["ptp", "host-local"], &[]);
    // Strict reverse-path filtering would drop the forgeries by itself: the test must see
    // spoofchk do it.
    world.host.exec_ok(&[
        "sysctl",
        "-qw",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.default.rp_filter=0",
    ]);
    let plugin = json!({"type": "ptp", "ipam": ipam("10.73.0.0/24", "fd00:73::/64")});
    let open = run(&world, plugin.clone(), false);
    assert!(
        open.iter().filter(|l| l.starts_with("forged")).count() == 2,
        "without spoofchk forged UDP lands: {open:?}"
    );
    let guarded = run(&world, plugin, true);
    assert!(guarded.iter().all(|l| !l.starts_with("forged")), "{guarded:?}");
    let guard = world.host.nft_text("inet", "twill_guard");
    assert!(!guard.contains("spnet/"), "DEL removed every element:\n{guard}");
}

#[test]
fn macvlan_pods_cannot_forge_addresses() {
    let world = World::new("spmv", &["macvlan", "host-local"], &[]);
    let wire = TestNs::new("spmvw");
    world.host.exec_ok(&[
        "ip",
        "link",
        "add",
        "spmv0",
        "type",
        "veth",
        "peer",
        "name",
        "wire0",
        "netns",
        wire.name(),
    ]);
    world.host.exec_ok(&["ip", "link", "set", "spmv0", "up"]);
    // Without a carrier on the master its macvlans carry nothing.
    wire.exec_ok(&["ip", "link", "set", "wire0", "up"]);
    let plugin = json!({"type": "macvlan", "master": "spmv0", "ipam": ipam("10.72.0.0/24", "fd00:72::/64")});
    let open = run(&world, plugin.clone(), false);
    assert_eq!(open.len(), 4, "without spoofchk every forgery lands: {open:?}");
    assert_eq!(run(&world, plugin, true), Vec::<String>::new());
}

#[test]
fn spoofchk_without_ipam_is_refused() {
    let world = World::new("spbad", &["bridge", "macvlan"], &[]);
    for plugin in [json!({"type": "bridge", "bridge": "spbad0"}), json!({"type": "macvlan", "master": "lo"})]
    {
        let mut plugin = plugin;
        plugin["spoofchk"] = json!(true);
        let net = world.list(json!({"cniVersion": "1.1.0", "name": "spbad", "plugins": [plugin]}));
        let pod = TestNs::new("spbadp");
        let err = world.runtime.add(&net, &world.rt("p", &pod)).expect_err("no ipam");
        assert_eq!(err.to_cni().code.code(), 7, "{err}");
        assert!(err.to_string().contains("spoofchk needs an \"ipam\" section"), "{err}");
    }
}
