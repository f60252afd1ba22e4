//! twill's `whereabouts` end to end, in namespaces, on the file datastore: under twill's
//! bridge (in-process) for every spec version (ADD → CHECK → DEL → DEL → GC → STATUS), two
//! "nodes" sharing one pool, GC by node, the flat file, dual-stack with an IPv6 window far
//! beyond Whereabouts' first /65, STATUS code 50 when full or unreachable, ADD code 11 when
//! the datastore is away, and bad inputs that leave nothing behind. The etcd churn with a
//! restart is in whereabouts_etcd.rs; three lab nodes in lab_whereabouts.rs.

mod support;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use cluster::ippool;
use cluster::store::FileStore;
use cni_exec::{LoadedList, RawExec, Runtime};
use cni_spec::{Attachment, Version};
use netns::NetNs;
use serde_json::{Value, json};
use support::{VERSIONS, World, addrs};
use testkit::{TestNs, wait_until};

const NET: &str = "wbnet";

/// The whereabouts `ipam` object on the world's file datastore, plus `extra` keys.
fn ipam(node: &str, extra: Value) -> Value {
    let mut v = json!({"type": "whereabouts", "datastore": "file:{dir}/ds", "node_name": node,
                       "configuration_path": "{dir}/whereabouts.conf"});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

fn bridge_list(world: &World, version: &str, bridge: &str, ipam: Value) -> LoadedList {
    world.list(json!({
        "cniVersion": version,
        "name": NET,
        "plugins": [{"type": "bridge", "bridge": bridge, "isGateway": true, "ipam": ipam}]
    }))
}

/// A world with an empty flat file (so nothing of the host's is ever read).
fn world(tag: &str) -> World {
    let w = World::new(tag, &["bridge", "whereabouts"], &[]);
    std::fs::write(w.dir.join("whereabouts.conf"), "{}").unwrap();
    w
}

fn store(world: &World) -> FileStore {
    FileStore::open(&world.dir.join("ds")).unwrap()
}

/// `ip (container)` of every reservation in the world's datastore.
fn reservations(world: &World) -> BTreeSet<String> {
    ippool::pools(&store(world))
        .unwrap()
        .into_iter()
        .flat_map(|p| p.reservations)
        .map(|s| format!("{} ({}@{})", s.record.ip, s.record.holder.container_id, s.record.holder.node))
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn host_veths(world: &World) -> usize {
    world.host_links().iter().filter(|l| l.starts_with("veth")).count()
}

fn lifecycle(version: &str, tag: &str) {
    let world = world(tag);
    let net = bridge_list(
        &world,
        version,
        "twwb0",
        ipam("node-a", json!({"range": "10.71.0.0/24", "gateway": "10.71.0.1"})),
    );
    let pod = TestNs::new(&format!("{tag}p"));
    let rt = world.rt("pod1", &pod);
    let result = world.add(&net, &rt);
    assert_eq!(result.cni_version.as_str(), version);
    assert_eq!(result.ips[0].address.to_string(), "10.71.0.2/24", "{version}: lowest free, gateway skipped");
    assert_eq!(result.ips[0].gateway.map(|g| g.to_string()).as_deref(), Some("10.71.0.1"));
    assert!(addrs(&pod, "eth0").contains(&"10.71.0.2/24".to_string()), "{version}");
    assert_eq!(reservations(&world), set(&["10.71.0.2 (pod1@node-a)"]), "{version}");
    let v = Version::parse(version).unwrap();
    if v.supports_check() {
        world.runtime.check(&net, &rt).unwrap_or_else(|e| panic!("{version} check: {e}"));
    }
    world.runtime.del(&net, &rt).unwrap_or_else(|e| panic!("{version} del: {e}"));
    assert!(reservations(&world).is_empty(), "{version}: after DEL");
    world.runtime.del(&net, &rt).unwrap_or_else(|e| panic!("{version} second del: {e}"));
    let report = world.runtime.gc(&net, &[]).unwrap_or_else(|e| panic!("{version} gc: {e}"));
    assert_eq!(report.gc_sent, v.supports_gc(), "{version}");
    if v.supports_gc() {
        assert!(world.runtime.status(&net).unwrap(), "{version}: STATUS ready");
    }
    assert!(wait_until(Duration::from_secs(10), || host_veths(&world) == 0), "{version}: veth removed");
}

#[test]
fn lifecycle_every_version() {
    for (i, version) in VERSIONS.iter().enumerate() {
        lifecycle(version, &format!("wbl{i}"));
    }
}

#[test]
fn two_nodes_share_one_pool_and_gc_frees_only_its_own() {
    let world = world("wb2n");
    let on = |node: &str| {
        bridge_list(
            &world,
            "1.1.0",
            "twwb1",
            ipam(node, json!({"range": "10.72.0.0/29", "gateway": "10.72.0.1"})),
        )
    };
    let (a, b) = (on("node-a"), on("node-b"));
    // node-b is another runtime with its own result cache.
    let exec = RawExec::in_netns(NetNs::open(world.host.path()).unwrap());
    let runtime_b =
        Runtime::with_exec(vec![world.dir.join("bin")], world.dir.join("cache-b"), Box::new(exec));
    let pods: Vec<TestNs> = (0..4).map(|i| TestNs::new(&format!("wb2n{i}"))).collect();
    let mut ips = BTreeSet::new();
    for (i, pod) in pods.iter().enumerate() {
        let rt = world.rt(&format!("c{i}"), pod);
        let r = match i % 2 {
            0 => world.add(&a, &rt),
            _ => runtime_b.add(&b, &rt).unwrap(),
        };
        assert!(ips.insert(r.ips[0].address.addr()), "duplicate {}", r.ips[0].address);
    }
    assert_eq!(ips.len(), 4);
    // GC on node-a with only c0 valid: c2 (node-a) goes, c1 and c3 (node-b) stay.
    let valid = [Attachment { container_id: "c0".into(), ifname: "eth0".into() }];
    world.runtime.gc(&a, &valid).unwrap();
    let held: BTreeSet<String> =
        reservations(&world).into_iter().map(|r| r.split(' ').nth(1).unwrap().to_string()).collect();
    assert_eq!(held, set(&["(c0@node-a)", "(c1@node-b)", "(c3@node-b)"]));
}

#[test]
fn flat_file_names_the_datastore() {
    let world = world("wbflat");
    let flat = json!({"datastore": format!("file:{}/ds", world.dir.display()), "node_name": "node-f"});
    std::fs::write(world.dir.join("whereabouts.conf"), flat.to_string()).unwrap();
    let ipam = json!({"type": "whereabouts", "range": "10.73.0.0/24", "configuration_path": "{dir}/whereabouts.conf"});
    let net = bridge_list(&world, "1.0.0", "twwb2", ipam);
    let pod = TestNs::new("wbflatp");
    assert_eq!(world.add(&net, &world.rt("f1", &pod)).ips[0].address.to_string(), "10.73.0.1/24");
    assert_eq!(reservations(&world), set(&["10.73.0.1 (f1@node-f)"]));
    world.runtime.del(&net, &world.rt("f1", &pod)).unwrap();
    assert!(reservations(&world).is_empty());
}

#[test]
fn dual_stack_reaches_the_far_end_of_a_wide_ipv6_range() {
    let world = world("wbv6");
    let far = "fd00:73::ffff:ffff:ffff:fff0-fd00:73::ffff:ffff:ffff:fffe/48";
    let ipam = ipam("node-a", json!({"ipRanges": [{"range": "10.74.0.0/24"}, {"range": far}]}));
    let net = bridge_list(&world, "1.1.0", "twwb3", ipam);
    let pod = TestNs::new("wbv6p");
    let r = world.add(&net, &world.rt("v1", &pod));
    let got: Vec<String> = r.ips.iter().map(|i| i.address.to_string()).collect();
    assert_eq!(got, ["10.74.0.1/24", "fd00:73::ffff:ffff:ffff:fff0/48"]);
    assert!(
        wait_until(Duration::from_secs(10), || addrs(&pod, "eth0").contains(&got[1])),
        "{:?}",
        addrs(&pod, "eth0")
    );
    world.runtime.del(&net, &world.rt("v1", &pod)).unwrap();
}

fn code_of(e: cni_exec::Error) -> (u32, String) {
    let c = e.to_cni();
    (c.code.code(), c.msg)
}

#[test]
fn status_and_add_when_full_or_unreachable() {
    let world = world("wbst");
    let full = bridge_list(&world, "1.1.0", "twwb4", ipam("node-a", json!({"range": "10.75.0.0/30"})));
    let pods: Vec<TestNs> = (0..3).map(|i| TestNs::new(&format!("wbst{i}"))).collect();
    assert!(world.runtime.status(&full).unwrap());
    world.add(&full, &world.rt("s0", &pods[0]));
    world.add(&full, &world.rt("s1", &pods[1]));
    let (code, msg) = code_of(world.runtime.status(&full).unwrap_err());
    assert_eq!(code, 50, "{msg}");
    assert!(msg.contains("is full"), "{msg}");
    let (code, msg) = code_of(world.runtime.add(&full, &world.rt("s2", &pods[2])).unwrap_err());
    assert_eq!(code, 100, "{msg}");
    assert!(msg.contains("no free address left in range 10.75.0.1-10.75.0.2"), "{msg}");
    world.runtime.del(&full, &world.rt("s2", &pods[2])).unwrap();
    // Nobody listens on port 1: STATUS 50, ADD 11 naming the datastore, nothing left behind.
    let mut away = ipam("node-a", json!({"range": "10.76.0.0/24"}));
    away["datastore"] = json!("etcd:http://127.0.0.1:1");
    let away = bridge_list(&world, "1.1.0", "twwb5", away);
    let (code, msg) = code_of(world.runtime.status(&away).unwrap_err());
    assert_eq!(code, 50, "{msg}");
    let (code, msg) = code_of(world.runtime.add(&away, &world.rt("s3", &pods[2])).unwrap_err());
    assert_eq!(code, 11, "{msg}");
    assert!(msg.contains("datastore etcd:http://127.0.0.1:1 is unreachable"), "{msg}");
    assert!(addrs(&pods[2], "eth0").is_empty());
    assert!(wait_until(Duration::from_secs(10), || host_veths(&world) == 2), "only s0 and s1 keep veths");
}

#[test]
fn bad_inputs_are_clear_and_leave_nothing() {
    let world = world("wbbad");
    let pod = TestNs::new("wbbadp");
    let cases = [
        (ipam("n", json!({})), 7, "no range"),
        (ipam("n", json!({"range": "10.77.0.0/33"})), 7, "ipam.range"),
        (ipam("n", json!({"range": "10.77.0.0/24", "datastore": "kubernetes"})), 7, "not supported"),
        (ipam("n", json!({"range": "10.77.0.0/24", "network_name": "Not_A_Name"})), 7, "network_name"),
        (
            ipam("n", json!({"range": "10.77.0.0/24", "configuration_path": "/nonexistent/wb.conf"})),
            7,
            "does not exist",
        ),
        (
            ipam("n", json!({"range": "10.77.0.0/24", "ipRanges": [{"range": "10.77.0.9/24"}]})),
            7,
            "appears twice",
        ),
    ];
    for (i, (ipam, want_code, want)) in cases.into_iter().enumerate() {
        let net = bridge_list(&world, "1.1.0", "twwb6", ipam.clone());
        let rt = world.rt(&format!("b{i}"), &pod);
        let (code, msg) = code_of(world.runtime.add(&net, &rt).unwrap_err());
        assert_eq!(code, want_code, "{ipam}: {msg}");
        assert!(msg.contains(want), "{ipam}: {msg}");
        let _ = world.runtime.del(&net, &rt);
    }
    assert!(reservations(&world).is_empty());
    assert!(wait_until(Duration::from_secs(10), || host_veths(&world) == 0));
    // GC without the valid list is refused rather than read as "nothing is valid".
    let conf = json!({"cniVersion": "1.1.0", "name": NET, "type": "whereabouts",
                      "ipam": ipam("n", json!({"range": "10.77.0.0/24"}))});
    let text = conf.to_string().replace("{dir}", &world.dir.display().to_string());
    let out = run_plugin(&world, "GC", &text);
    assert!(out.contains("\"code\":7") || out.contains("\"code\": 7"), "{out}");
}

/// Runs the whereabouts binary directly with `command` and `stdin`; returns stdout.
fn run_plugin(world: &World, command: &str, stdin: &str) -> String {
    use std::io::Write;
    let exe = world.dir.join("bin").join("whereabouts");
    let mut child = std::process::Command::new(exe)
        .env("CNI_COMMAND", command)
        .env("CNI_PATH", world.dir.join("bin"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn overlapping_ranges_of_two_networks_never_share_an_address() {
    let world = world("wbov");
    let gw = |range: &str| ipam("n", json!({"range": range, "gateway": "10.78.0.1"}));
    let wide = bridge_list(&world, "1.0.0", "twwb7", gw("10.78.0.0/24"));
    let narrow = bridge_list(&world, "1.0.0", "twwb8", gw("10.78.0.0/29"));
    let pods: Vec<TestNs> = (0..4).map(|i| TestNs::new(&format!("wbov{i}"))).collect();
    let mut seen: BTreeSet<IpAddr> = BTreeSet::new();
    for (i, pod) in pods.iter().enumerate() {
        let net = if i % 2 == 0 { &wide } else { &narrow };
        let ip = world.add(net, &world.rt(&format!("o{i}"), pod)).ips[0].address.addr();
        assert!(seen.insert(ip), "{ip} twice");
    }
}

#[test]
fn check_reports_a_reservation_that_is_gone() {
    let world = world("wbck");
    let net = bridge_list(&world, "1.0.0", "twwb9", ipam("n", json!({"range": "10.80.0.0/24"})));
    let pod = TestNs::new("wbckp");
    let rt = world.rt("k1", &pod);
    world.add(&net, &rt);
    world.runtime.check(&net, &rt).unwrap();
    // Someone freed it behind the runtime's back (an operator, a reconciler misled).
    ippool::release(&store(&world), "", "k1", "eth0").unwrap();
    let (code, msg) = code_of(world.runtime.check(&net, &rt).unwrap_err());
    assert_eq!(code, 102, "{msg}");
    assert!(msg.contains("no address of range 10.80.0.0/24 is reserved for k1/eth0"), "{msg}");
    world.runtime.del(&net, &rt).unwrap();
}
