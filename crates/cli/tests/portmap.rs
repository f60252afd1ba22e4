//! twill's portmap plugin end to end, in namespaces: a chain bridge + portmap with the
//! reference host-local, a fake node (the World's host netns) and an "outside" host joined to
//! it by a veth pair. Connections go to real servers in the pods, from outside, from the node
//! itself (127.0.0.1 and its own addresses) and from pods (hairpin). Traffic never leaves the
//! namespaces created here.

#[path = "portmap/net.rs"]
mod net;
mod support;

use std::net::SocketAddr;

use cni_exec::{LoadedList, RuntimeConf};
use net::{Server, outside_host, plugin, tcp_get, udp_ask};
use serde_json::{Value, json};
use std::time::Duration;
use support::World;

use testkit::{TestNs, wait_until};

const NODE: &str = "198.51.100.1";
const NODE6: &str = "2001:db8:77::1";

/// bridge (gateway on the bridge) + the reference host-local + portmap with `portmap` options.
fn list(world: &World, version: &str, bridge: &str, subnet: &str, portmap: Value) -> LoadedList {
    list_with(world, version, json!({"bridge": bridge}), subnet, portmap)
}

fn list_with(world: &World, version: &str, bridge: Value, subnet: &str, portmap: Value) -> LoadedList {
    let mut br = json!({"type": "bridge", "isGateway": true,
        "ipam": {"type": "host-local", "subnet": subnet, "dataDir": "{dir}/ipam", "routes": [{"dst": "0.0.0.0/0"}]}});
    let mut pm = json!({"type": "portmap", "capabilities": {"portMappings": true}});
    for (target, extra) in [(&mut br, bridge), (&mut pm, portmap)] {
        for (k, v) in extra.as_object().unwrap() {
            target[k] = v.clone();
        }
    }
    world.list(json!({"cniVersion": version, "name": "pmnet", "plugins": [br, pm]}))
}

fn rt(world: &World, id: &str, pod: &TestNs, maps: Value) -> RuntimeConf {
    let mut rt = world.rt(id, pod);
    rt.capability_args.insert("portMappings".into(), maps);
    rt
}

fn sock(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

fn table(world: &World) -> String {
    let out = world.host.exec(&["nft", "list", "table", "inet", "twill_portmap"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Rules and elements of the table, from its JSON listing.
fn counts(world: &World) -> (usize, usize) {
    let json = world.host.exec_json(&["nft", "-j", "list", "table", "inet", "twill_portmap"]);
    let objects = json["nftables"].as_array().cloned().unwrap_or_default();
    let rules = objects.iter().filter(|o| o.get("rule").is_some()).count();
    let elems = objects
        .iter()
        .filter_map(|o| o.get("map").or_else(|| o.get("set")))
        .map(|s| s["elem"].as_array().map_or(0, Vec::len))
        .sum();
    (rules, elems)
}

fn pod_ip(result: &cni_spec::CniResult) -> String {
    result.ips[0].address.addr().to_string()
}

#[test]
fn forwards_from_outside_node_and_pods() {
    let world = World::new("pmfwd", &["bridge", "portmap"], &["host-local"]);
    let outside = outside_host(&world, "pmfwdo", NODE, None);
    let (a, b) = (TestNs::new("pmfwda"), TestNs::new("pmfwdb"));
    // hairpinMode: with br_netfilter loaded (as on this machine and on most Kubernetes nodes)
    // a pod's packet to its own host port is DNATed in the bridge and must go back out the
    // port it came in, as with the reference plugins.
    let net = list_with(
        &world,
        "1.0.0",
        json!({"bridge": "pmbr0", "hairpinMode": true}),
        "10.77.0.0/24",
        json!({}),
    );
    let maps = json!([
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 5353, "containerPort": 53, "protocol": "udp"},
        {"hostPort": 8081, "containerPort": 81, "protocol": "tcp", "hostIP": NODE},
        {"hostPort": 9999, "containerPort": 9, "protocol": "sctp"}
    ]);
    let ra = rt(&world, "a", &a, maps);
    world.add(&net, &ra);
    world.add(&net, &rt(&world, "b", &b, json!([])));
    let _servers = [Server::tcp(&a, 80, "a80"), Server::tcp(&a, 81, "a81"), Server::udp(&a, 53, "a53")];

    assert_eq!(tcp_get(&outside, sock(NODE, 8080)).as_deref(), Some("a80"), "from outside");
    assert_eq!(udp_ask(&outside, sock(NODE, 5353)).as_deref(), Some("a53"), "udp from outside");
    assert_eq!(tcp_get(&outside, sock(NODE, 8081)).as_deref(), Some("a81"), "hostIP-bound");
    assert_eq!(tcp_get(&world.host, sock("127.0.0.1", 8080)).as_deref(), Some("a80"), "node via localhost");
    assert_eq!(tcp_get(&world.host, sock(NODE, 8080)).as_deref(), Some("a80"), "node via its address");
    assert_eq!(tcp_get(&world.host, sock("10.77.0.1", 8080)).as_deref(), Some("a80"), "node via bridge");
    assert_eq!(udp_ask(&world.host, sock("127.0.0.1", 5353)).as_deref(), Some("a53"), "udp via localhost");
    assert_eq!(tcp_get(&world.host, sock("127.0.0.1", 8081)), None, "8081 is bound to {NODE} only");
    assert_eq!(tcp_get(&b, sock(NODE, 8080)).as_deref(), Some("a80"), "hairpin from another pod");
    assert_eq!(tcp_get(&b, sock("10.77.0.1", 8080)).as_deref(), Some("a80"), "pod via the gateway");
    assert_eq!(tcp_get(&a, sock(NODE, 8080)).as_deref(), Some("a80"), "hairpin to itself");
    assert_eq!(world.host.exec_ok(&["sysctl", "-n", "net.ipv4.conf.pmbr0.route_localnet"]).trim(), "1");
    let t = table(&world);
    assert!(t.contains("sctp . 9999 comment \"pmnet/a/eth0\" : 10.77.0.2 . 9"), "{t}");
    assert!(t.contains(&format!("{NODE} . tcp . 8081 comment")), "{t}");

    world.runtime.check(&net, &ra).expect("check");
    let conntrack = || world.host.exec_ok(&["conntrack", "-L", "-p", "udp", "--orig-port-dst", "5353"]);
    assert!(conntrack().contains("10.77.0.2"), "a UDP flow to the pod exists");
    world.runtime.del(&net, &ra).expect("del");
    assert!(!table(&world).contains("pmnet/a/eth0"), "{}", table(&world));
    assert_eq!(counts(&world).1, 0, "no element left");
    assert!(!conntrack().contains("10.77.0.2"), "UDP conntrack entries of the pod are gone");
    assert_eq!(tcp_get(&outside, sock(NODE, 8080)), None, "no forwarding after DEL");
    assert!(world.runtime.check(&net, &ra).is_err(), "CHECK notices the entries are gone");
    world.runtime.del(&net, &ra).expect("second del");
    world.runtime.del(&net, &world.rt("b", &b)).expect("del b");
}

#[test]
fn dual_stack_forwards_ipv6_from_outside() {
    let world = World::new("pmv6", &["bridge", "portmap"], &["host-local"]);
    let outside = outside_host(&world, "pmv6o", NODE, Some(NODE6));
    let pod = TestNs::new("pmv6p");
    let net = world.list(json!({
        "cniVersion": "1.0.0", "name": "pmnet",
        "plugins": [{
            "type": "bridge", "bridge": "pmbr6", "isGateway": true,
            "ipam": {"type": "host-local", "dataDir": "{dir}/ipam",
                     "ranges": [[{"subnet": "10.78.0.0/24"}], [{"subnet": "fd00:78::/64"}]],
                     "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}
        }, {"type": "portmap", "capabilities": {"portMappings": true}}]
    }));
    let r = rt(&world, "p", &pod, json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]));
    world.add(&net, &r);
    let _server = Server::tcp(&pod, 80, "v6ok");
    // Until the new bridge's link-local address leaves DAD the kernel cannot solicit
    // neighbours for forwarded IPv6 packets (ndisc_send_ns needs a usable link-local).
    let ready = || {
        !world
            .host
            .exec_ok(&["ip", "-6", "addr", "show", "dev", "pmbr6", "scope", "link"])
            .contains("tentative")
    };
    assert!(wait_until(Duration::from_secs(5), ready), "pmbr6 link-local still tentative");
    assert_eq!(tcp_get(&outside, sock(NODE6, 8080)).as_deref(), Some("v6ok"));
    assert_eq!(tcp_get(&outside, sock(NODE, 8080)).as_deref(), Some("v6ok"));
    assert!(table(&world).contains("fd00:78::2 . 80"));
    world.runtime.check(&net, &r).expect("check");
    world.runtime.del(&net, &r).expect("del");
    assert_eq!(counts(&world).1, 0);
}

fn lifecycle(version: &str, tag: &str) {
    let world = World::new(tag, &["bridge", "portmap"], &["host-local"]);
    let outside = outside_host(&world, &format!("{tag}o"), NODE, None);
    let pod = TestNs::new(&format!("{tag}p"));
    let net = list(&world, version, "pmbr1", "10.79.0.0/24", json!({}));
    let r = rt(&world, "pod1", &pod, json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]));
    let result = world.add(&net, &r);
    assert_eq!(pod_ip(&result), "10.79.0.2", "{version}: prevResult passed through");
    let _server = Server::tcp(&pod, 80, "ok");
    assert_eq!(tcp_get(&outside, sock(NODE, 8080)).as_deref(), Some("ok"), "{version}");
    assert!(table(&world).contains("tcp . 8080 comment \"pmnet/pod1/eth0\" : 10.79.0.2 . 80"), "{version}");
    if cni_spec::Version::parse(version).unwrap().supports_check() {
        world.runtime.check(&net, &r).unwrap_or_else(|e| panic!("{version} check: {e}"));
    }
    world.runtime.del(&net, &r).unwrap_or_else(|e| panic!("{version} del: {e}"));
    assert_eq!(counts(&world).1, 0, "{version}: no element left");
    world.runtime.del(&net, &r).unwrap_or_else(|e| panic!("{version} second del: {e}"));
}

#[test]
fn lifecycle_0_1_0() {
    lifecycle("0.1.0", "pm010");
}
#[test]
fn lifecycle_0_2_0() {
    lifecycle("0.2.0", "pm020");
}
#[test]
fn lifecycle_0_3_0() {
    lifecycle("0.3.0", "pm030");
}
#[test]
fn lifecycle_0_3_1() {
    lifecycle("0.3.1", "pm031");
}
#[test]
fn lifecycle_0_4_0() {
    lifecycle("0.4.0", "pm040");
}
#[test]
fn lifecycle_1_0_0() {
    lifecycle("1.0.0", "pm100");
}

#[test]
fn pod_without_mappings_creates_nothing() {
    let world = World::new("pmnone", &["bridge", "portmap"], &["host-local"]);
    let pod = TestNs::new("pmnonep");
    let net = list(&world, "1.0.0", "pmbr2", "10.80.0.0/24", json!({}));
    let r = rt(&world, "p", &pod, json!([]));
    world.add(&net, &r);
    world.runtime.check(&net, &r).expect("check");
    assert!(!world.host.exec(&["nft", "list", "table", "inet", "twill_portmap"]).status.success());
    world.runtime.del(&net, &r).expect("del");
}

#[test]
fn bad_mappings_are_code_7_and_leave_nothing() {
    let world = World::new("pmbad", &["bridge", "portmap"], &["host-local"]);
    let pod = TestNs::new("pmbadp");
    let net = list(&world, "1.0.0", "pmbr3", "10.81.0.0/24", json!({}));
    let cases = [
        (json!({"hostPort": 0, "containerPort": 80, "protocol": "tcp"}), "invalid host port number 0"),
        (
            json!({"hostPort": 65536, "containerPort": 80, "protocol": "tcp"}),
            "invalid host port number 65536",
        ),
        (json!({"hostPort": 80, "containerPort": 0, "protocol": "tcp"}), "invalid container port number 0"),
        (json!({"hostPort": 80, "containerPort": 80, "protocol": "icmp"}), "unknown protocol \"icmp\""),
        (json!({"hostPort": 80, "containerPort": 80, "protocol": "tcp", "hostIP": "nope"}), "invalid hostIP"),
    ];
    for (i, (m, needle)) in cases.into_iter().enumerate() {
        // A valid mapping first: it must not be installed either.
        let good = json!({"hostPort": 7000, "containerPort": 80, "protocol": "tcp"});
        let r = rt(&world, &format!("bad{i}"), &pod, json!([good, m]));
        let err = world.runtime.add(&net, &r).expect_err(needle);
        assert_eq!(err.to_cni().code.code(), 7, "{err}");
        assert!(err.to_string().contains(needle), "{err} lacks {needle}");
        assert!(!table(&world).contains("7000"), "nothing installed for {needle}");
        world.runtime.del(&net, &world.rt(&format!("bad{i}"), &pod)).expect("cleanup del");
    }
}

#[test]
fn conditions_twill_cannot_use_are_code_7_and_leave_nothing() {
    let world = World::new("pmbadc", &["portmap"], &[]);
    for conditions in [json!(["ip nosuchfield 1"]), json!(["ip saddr somehost"]), json!(["tcp dport 80"])] {
        let bad = direct_conf(1, json!({"conditionsV4": conditions}));
        let err = plugin(&world, "portmap", "ADD", "pod1", &bad).expect_err("bad conditions").to_cni();
        assert_eq!(err.code.code(), 7, "{err}");
        assert!(
            err.msg.starts_with("conditionsV4: cannot use")
                && err.msg.contains("understands FIELD [!=] VALUE"),
            "{err}"
        );
    }
    assert!(!world.host.exec(&["nft", "list", "table", "inet", "twill_portmap"]).status.success());
}

#[test]
fn a_taken_host_port_is_refused_and_kept() {
    let world = World::new("pmtaken", &["bridge", "portmap"], &["host-local"]);
    let outside = outside_host(&world, "pmtakeno", NODE, None);
    let (a, b) = (TestNs::new("pmtakena"), TestNs::new("pmtakenb"));
    let net = list(&world, "1.0.0", "pmbr4", "10.82.0.0/24", json!({}));
    let maps = json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]);
    let ra = rt(&world, "a", &a, maps.clone());
    world.add(&net, &ra);
    let _server = Server::tcp(&a, 80, "first");
    let rb = rt(&world, "b", &b, maps);
    let err = world.runtime.add(&net, &rb).expect_err("port taken");
    assert_eq!(err.to_cni().code.code(), 100, "{err}");
    assert!(err.to_string().contains("tcp/8080 is already mapped by pmnet/a/eth0"), "{err}");
    world.runtime.del(&net, &rb).expect("del b");
    assert_eq!(tcp_get(&outside, sock(NODE, 8080)).as_deref(), Some("first"), "a keeps its port");
    world.runtime.check(&net, &ra).expect("check a");
    world.runtime.del(&net, &ra).expect("del a");
}

#[test]
fn conditions_restrict_forwarding() {
    let world = World::new("pmcond", &["bridge", "portmap"], &["host-local"]);
    let outside = outside_host(&world, "pmcondo", NODE, None);
    let pod = TestNs::new("pmcondp");
    let net =
        list(&world, "1.0.0", "pmbr5", "10.83.0.0/24", json!({"conditionsV4": ["ip saddr != 198.51.100.2"]}));
    let r = rt(&world, "p", &pod, json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]));
    world.add(&net, &r);
    let _server = Server::tcp(&pod, 80, "ok");
    assert_eq!(tcp_get(&outside, sock(NODE, 8080)), None, "198.51.100.2 is excluded");
    assert_eq!(tcp_get(&world.host, sock("127.0.0.1", 8080)).as_deref(), Some("ok"));
    world.runtime.check(&net, &r).expect("check");
    world.runtime.del(&net, &r).expect("del");
    assert_eq!(counts(&world).1, 0);
}

#[test]
fn iptables_backend_forwards_and_cleans_up() {
    let world = World::new("pmipt", &["bridge", "portmap"], &["host-local"]);
    let outside = outside_host(&world, "pmipto", NODE, None);
    let (a, b) = (TestNs::new("pmipta"), TestNs::new("pmiptb"));
    let net = list(
        &world,
        "1.0.0",
        "pmbr6",
        "10.84.0.0/24",
        json!({"conditionsV4": ["!", "-s", "203.0.113.0/24"]}),
    );
    let ra = rt(&world, "a", &a, json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]));
    world.add(&net, &ra);
    world.add(&net, &rt(&world, "b", &b, json!([])));
    let _server = Server::tcp(&a, 80, "ipt");
    assert_eq!(tcp_get(&outside, sock(NODE, 8080)).as_deref(), Some("ipt"));
    assert_eq!(tcp_get(&world.host, sock("127.0.0.1", 8080)).as_deref(), Some("ipt"));
    assert_eq!(tcp_get(&b, sock(NODE, 8080)).as_deref(), Some("ipt"), "hairpin");
    world.runtime.check(&net, &ra).expect("check");
    let saved = || world.host.exec_ok(&["iptables-save", "-t", "nat"]);
    assert!(saved().contains("twill-portmap pmnet/a/eth0"), "iptables-style conditions pick iptables");
    assert!(saved().contains("! -s 203.0.113.0/24"), "{}", saved());
    world.runtime.del(&net, &ra).expect("del");
    assert!(!saved().contains("TWILL-DN-"), "{}", saved());
    assert_eq!(tcp_get(&outside, sock(NODE, 8080)), None);
    world.runtime.del(&net, &ra).expect("second del");
}

#[test]
fn reference_bridge_chains_with_twill_portmap() {
    let world = World::new("pmref", &["portmap"], &["bridge", "host-local"]);
    let outside = outside_host(&world, "pmrefo", NODE, None);
    let pod = TestNs::new("pmrefp");
    let net = list(&world, "1.0.0", "pmbr7", "10.85.0.0/24", json!({}));
    let r = rt(&world, "p", &pod, json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]));
    world.add(&net, &r);
    let _server = Server::tcp(&pod, 80, "ref");
    assert_eq!(tcp_get(&outside, sock(NODE, 8080)).as_deref(), Some("ref"));
    assert_eq!(tcp_get(&world.host, sock("127.0.0.1", 8080)).as_deref(), Some("ref"));
    world.runtime.check(&net, &r).expect("check");
    world.runtime.del(&net, &r).expect("del");
    assert_eq!(counts(&world).1, 0);
}

/// A portmap config for attachment `pod{id}` with two mappings and a synthetic prevResult.
fn direct_conf(id: usize, extra: Value) -> Value {
    let mut c = json!({"cniVersion": "1.1.0", "name": "pmnet", "type": "portmap",
        "runtimeConfig": {"portMappings": [
            {"hostPort": 10000 + id, "containerPort": 80, "protocol": "tcp"},
            {"hostPort": 20000 + id, "containerPort": 53, "protocol": "udp"}]},
        "prevResult": {"cniVersion": "1.1.0",
            "interfaces": [{"name": "eth0", "sandbox": "/run/netns/x"}],
            "ips": [{"address": format!("10.86.{}.{}/16", id / 200, id % 200 + 2), "interface": 0}]}});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// Pods starting at once on a fresh node: one table, its rules once (nomad#6567 was a
/// chain-creation race in the reference).
#[test]
fn concurrent_first_pods_create_one_table() {
    let world = World::new("pmrace", &["portmap"], &[]);
    std::thread::scope(|s| {
        for id in 0..8 {
            let world = &world;
            s.spawn(move || {
                plugin(world, "portmap", "ADD", &format!("pod{id}"), &direct_conf(id, json!({})))
            });
        }
    });
    assert_eq!(counts(&world), (8, 8 * 4), "the fixed rules once, every pod's elements");
}

/// 50 attachments: elements grow, rules do not. Driven straight through the plugin with a
/// synthetic prevResult (no pods needed to count rules); GC then keeps only the valid half.
#[test]
fn fifty_pods_add_elements_not_rules() {
    let world = World::new("pmfifty", &["portmap"], &[]);
    plugin(&world, "portmap", "ADD", "pod0", &direct_conf(0, json!({}))).expect("add pod0");
    let (rules, elems) = counts(&world);
    assert_eq!(elems, 4, "2 mappings + 2 masquerade elements");
    plugin(&world, "portmap", "ADD", "pod0", &direct_conf(0, json!({}))).expect("a repeated ADD is fine");
    assert_eq!(counts(&world), (rules, 4));
    for id in 1..50 {
        plugin(&world, "portmap", "ADD", &format!("pod{id}"), &direct_conf(id, json!({}))).expect("add");
    }
    assert_eq!(counts(&world), (rules, 50 * 4), "rules unchanged, elements grew");
    let valid: Vec<Value> =
        (0..25).map(|id| json!({"containerID": format!("pod{id}"), "ifname": "eth0"})).collect();
    let gc = json!({"cni.dev/valid-attachments": valid});
    plugin(&world, "portmap", "GC", "", &direct_conf(0, gc)).expect("gc");
    assert_eq!(counts(&world), (rules, 25 * 4), "GC removed the 25 stale attachments");
    assert!(table(&world).contains("pmnet/pod24/eth0") && !table(&world).contains("pmnet/pod25/eth0"));
    for id in 0..25 {
        plugin(&world, "portmap", "DEL", &format!("pod{id}"), &direct_conf(id, json!({}))).expect("del");
    }
    assert_eq!(counts(&world), (rules, 0));
}
