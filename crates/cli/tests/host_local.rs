//! twill's host-local end to end, in namespaces, under twill's bridge (which runs it
//! in-process) and under the reference bridge (which executes it): every spec version with
//! the data dir compared byte for byte, dual-stack, requested addresses, exhaustion, GC.
//! Mixed chains, concurrency and the node-reboot case are in host_local/chains.rs.

#[path = "host_local/chains.rs"]
mod chains;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use cni_exec::LoadedList;
use cni_spec::{Attachment, Version};
use serde_json::{Value, json};
use support::{World, addrs};
use testkit::{TestNs, wait_until};

/// The network name of every list here: the directory under `{dir}/ipam`.
const NET: &str = "hlnet";

fn ipam(subnet: &str) -> Value {
    json!({"type": "host-local", "subnet": subnet, "dataDir": "{dir}/ipam"})
}

/// A bridge + host-local list; `ips` is declared so runtimes may pass requested addresses.
fn bridge_list(world: &World, version: &str, bridge: &str, ipam: Value) -> LoadedList {
    world.list(json!({
        "cniVersion": version,
        "name": NET,
        "plugins": [{"type": "bridge", "bridge": bridge, "isGateway": true,
                     "capabilities": {"ips": true}, "ipam": ipam}]
    }))
}

/// Every file of the network's data dir with its exact content.
fn data_dir(world: &World) -> BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(world.dir.join("ipam").join(NET)) else { return BTreeMap::new() };
    entries
        .flatten()
        .map(|e| {
            let bytes = std::fs::read(e.path()).unwrap();
            (e.file_name().to_string_lossy().into_owned(), String::from_utf8(bytes).unwrap())
        })
        .collect()
}

fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn host_veths(world: &World) -> usize {
    world.host_links().iter().filter(|l| l.starts_with("veth")).count()
}

/// Waits for the kernel to finish removing veths until `want` are left.
fn veths_settle(world: &World, want: usize) -> bool {
    wait_until(Duration::from_secs(10), || host_veths(world) == want)
}

/// ADD → CHECK (≥0.4.0) → DEL → DEL → GC (→ STATUS at 1.1.0), data dir checked after each.
fn lifecycle(world: &World, net: &LoadedList, version: &str, tag: &str) {
    let pod = TestNs::new(&format!("{tag}p"));
    let rt = world.rt("pod1", &pod);
    let result = world.add(net, &rt);
    assert_eq!(result.cni_version.as_str(), version);
    let ip = result.ips.iter().find(|ip| ip.address.addr().is_ipv4()).expect("an IPv4 address");
    assert_eq!(ip.address.to_string(), "10.70.0.2/24", "{version}");
    assert_eq!(ip.gateway.map(|g| g.to_string()).as_deref(), Some("10.70.0.1"), "{version}");
    assert!(addrs(&pod, "eth0").contains(&"10.70.0.2/24".to_string()), "{version}");
    let held = files(&[("10.70.0.2", "pod1\r\neth0"), ("last_reserved_ip.0", "10.70.0.2"), ("lock", "")]);
    assert_eq!(data_dir(world), held, "{version}: after ADD");
    let v = Version::parse(version).unwrap();
    if v.supports_check() {
        world.runtime.check(net, &rt).unwrap_or_else(|e| panic!("{version} check: {e}"));
    }
    world.runtime.del(net, &rt).unwrap_or_else(|e| panic!("{version} del: {e}"));
    let freed = files(&[("last_reserved_ip.0", "10.70.0.2"), ("lock", "")]);
    assert_eq!(data_dir(world), freed, "{version}: after DEL");
    assert!(veths_settle(world, 0), "{version}: veth removed");
    world.runtime.del(net, &rt).unwrap_or_else(|e| panic!("{version} second del: {e}"));
    assert_eq!(data_dir(world), freed, "{version}: after second DEL");
    let report = world.runtime.gc(net, &[]).unwrap_or_else(|e| panic!("{version} gc: {e}"));
    assert_eq!(report.gc_sent, v.supports_gc(), "{version}");
    assert_eq!(data_dir(world), freed, "{version}: after GC");
    if v.supports_gc() {
        assert!(world.runtime.status(net).unwrap(), "{version}: STATUS ready");
    }
}

fn twill_lifecycle(version: &str, tag: &str) {
    let world = World::new(tag, &["bridge", "host-local"], &[]);
    let net = bridge_list(&world, version, "twhl0", ipam("10.70.0.0/24"));
    lifecycle(&world, &net, version, tag);
}

#[test]
fn lifecycle_0_1_0() {
    twill_lifecycle("0.1.0", "hl010");
}
#[test]
fn lifecycle_0_2_0() {
    twill_lifecycle("0.2.0", "hl020");
}
#[test]
fn lifecycle_0_3_0() {
    twill_lifecycle("0.3.0", "hl030");
}
#[test]
fn lifecycle_0_3_1() {
    twill_lifecycle("0.3.1", "hl031");
}
#[test]
fn lifecycle_0_4_0() {
    twill_lifecycle("0.4.0", "hl040");
}
#[test]
fn lifecycle_1_0_0() {
    twill_lifecycle("1.0.0", "hl100");
}
#[test]
fn lifecycle_1_1_0() {
    twill_lifecycle("1.1.0", "hl110");
}

/// GC with a valid list: the runtime DELs a stale attachment it has cached, host-local's GC
/// frees one whose cache entry is gone, the valid one keeps its address.
#[test]
fn gc_frees_stale_keeps_valid() {
    let world = World::new("hlgc", &["bridge", "host-local"], &[]);
    let net = bridge_list(&world, "1.1.0", "twhl1", ipam("10.71.0.0/24"));
    let pods: Vec<TestNs> = (0..3).map(|i| TestNs::new(&format!("hlgc{i}"))).collect();
    for (id, pod) in ["keep", "cached", "lost"].iter().zip(&pods) {
        world.add(&net, &world.rt(id, pod));
    }
    world.runtime.cache().remove(NET, "lost", "eth0").unwrap();
    let valid = [Attachment { container_id: "keep".into(), ifname: "eth0".into() }];
    let report = world.runtime.gc(&net, &valid).unwrap();
    assert_eq!(report.deleted, [Attachment { container_id: "cached".into(), ifname: "eth0".into() }]);
    assert!(report.gc_sent);
    let left = files(&[("10.71.0.2", "keep\r\neth0"), ("last_reserved_ip.0", "10.71.0.4"), ("lock", "")]);
    assert_eq!(data_dir(&world), left);
    world.runtime.check(&net, &world.rt("keep", &pods[0])).unwrap();
}

fn dual_stack(version: &str, tag: &str) {
    let world = World::new(tag, &["bridge", "host-local"], &[]);
    let ranges = json!({"type": "host-local", "dataDir": "{dir}/ipam",
                        "ranges": [[{"subnet": "10.72.0.0/24"}], [{"subnet": "fd72::/64"}]]});
    let net = bridge_list(&world, version, "twhl2", ranges);
    let pod = TestNs::new(&format!("{tag}p"));
    let rt = world.rt("pod1", &pod);
    let result = world.add(&net, &rt);
    let got: Vec<String> = result.ips.iter().map(|ip| ip.address.to_string()).collect();
    assert_eq!(got, ["10.72.0.2/24", "fd72::2/64"], "{version}");
    let in_pod = addrs(&pod, "eth0");
    assert!(in_pod.contains(&got[0]) && in_pod.contains(&got[1]), "{version}: {in_pod:?}");
    let held = files(&[
        ("10.72.0.2", "pod1\r\neth0"),
        ("fd72::2", "pod1\r\neth0"),
        ("last_reserved_ip.0", "10.72.0.2"),
        ("last_reserved_ip.1", "fd72::2"),
        ("lock", ""),
    ]);
    assert_eq!(data_dir(&world), held, "{version}");
    world.runtime.del(&net, &rt).unwrap();
    assert_eq!(world.reservations(NET), Vec::<String>::new(), "{version}");
}

#[test]
fn dual_stack_1_0_0() {
    dual_stack("1.0.0", "hlds100");
}
#[test]
fn dual_stack_0_2_0() {
    dual_stack("0.2.0", "hlds020");
}

/// A failed ADD must leave nothing: no veth on the host, no interface in the pod, the data
/// dir exactly as before; a DEL after it (as runtimes send) must not free anyone else's IP.
fn assert_failed_cleanly(
    world: &World,
    net: &LoadedList,
    rt: &cni_exec::RuntimeConf,
    pod: &TestNs,
    code: u32,
) {
    let before = data_dir(world);
    let veths = host_veths(world);
    let err = world.runtime.add(net, rt).unwrap_err();
    assert_eq!(err.to_cni().code.code(), code, "{err}");
    assert!(veths_settle(world, veths), "no veth left behind: {err}");
    assert!(pod.handle().link_get("eth0").unwrap().is_none(), "no eth0 left in the pod");
    assert_eq!(data_dir(world), before, "no reservation left: {err}");
    world.runtime.del(net, rt).unwrap();
    assert_eq!(data_dir(world), before, "DEL after a failed ADD frees nothing of others");
}

#[test]
fn requested_ips_and_duplicates() {
    let world = World::new("hlreq", &["bridge", "host-local"], &[]);
    let net = bridge_list(&world, "1.0.0", "twhl3", ipam("10.73.0.0/24"));
    let pods: Vec<TestNs> = (0..4).map(|i| TestNs::new(&format!("hlreq{i}"))).collect();
    let mut by_args = world.rt("byargs", &pods[0]);
    by_args.args = vec![("IgnoreUnknown".into(), "1".into()), ("IP".into(), "10.73.0.50".into())];
    assert_eq!(world.add(&net, &by_args).ips[0].address.to_string(), "10.73.0.50/24");
    let mut by_cap = world.rt("bycap", &pods[1]);
    by_cap.capability_args.insert("ips".into(), json!(["10.73.0.60/24"]));
    assert_eq!(world.add(&net, &by_cap).ips[0].address.to_string(), "10.73.0.60/24");
    assert_eq!(data_dir(&world)["10.73.0.60"], "bycap\r\neth0");

    let mut dup_cap = world.rt("dupcap", &pods[2]);
    dup_cap.capability_args.insert("ips".into(), json!(["10.73.0.50"]));
    assert_failed_cleanly(&world, &net, &dup_cap, &pods[2], 101);
    let mut dup_args = world.rt("dupargs", &pods[3]);
    dup_args.args = vec![("IP".into(), "10.73.0.60/24".into())];
    assert_failed_cleanly(&world, &net, &dup_args, &pods[3], 101);
    let mut outside = world.rt("outside", &pods[3]);
    outside.args = vec![("IP".into(), "10.99.0.1".into())];
    assert_failed_cleanly(&world, &net, &outside, &pods[3], 7);
}

#[test]
fn exhaustion_has_code_100_and_leaves_nothing() {
    let world = World::new("hlfull", &["bridge", "host-local"], &[]);
    let small = json!({"type": "host-local", "subnet": "10.74.0.0/24", "rangeStart": "10.74.0.10",
                       "rangeEnd": "10.74.0.11", "dataDir": "{dir}/ipam"});
    let net = bridge_list(&world, "1.0.0", "twhl4", small);
    let pods: Vec<TestNs> = (0..3).map(|i| TestNs::new(&format!("hlfull{i}"))).collect();
    world.add(&net, &world.rt("a", &pods[0]));
    world.add(&net, &world.rt("b", &pods[1]));
    assert_eq!(world.reservations(NET), ["10.74.0.10", "10.74.0.11"]);
    assert_failed_cleanly(&world, &net, &world.rt("c", &pods[2]), &pods[2], 100);
}

#[test]
fn legacy_version_refuses_two_addresses_per_family() {
    let world = World::new("hlleg", &["bridge", "host-local"], &[]);
    let two = json!({"type": "host-local", "dataDir": "{dir}/ipam",
                     "ranges": [[{"subnet": "10.75.0.0/24"}], [{"subnet": "10.76.0.0/24"}]]});
    let net = bridge_list(&world, "0.2.0", "twhl5", two);
    let pod = TestNs::new("hllegp");
    let err = world.runtime.add(&net, &world.rt("p", &pod)).unwrap_err();
    assert_eq!(err.to_cni().code.code(), 1, "{err}");
    assert!(err.to_string().contains("does not support more than 1 address per family"), "{err}");
    assert!(veths_settle(&world, 0));
    assert!(data_dir(&world).is_empty(), "nothing written");
}

/// STATUS (1.1.0) says whether ADD can be served: while the range is exhausted host-local
/// answers code 50, and bridge and ptp pass it through, whether host-local runs in-process
/// (same binary) or as a process of its own; a DEL makes the network available again.
#[test]
fn status_is_not_available_while_the_range_is_exhausted() {
    let world = World::new("hlstat", &["bridge", "host-local", "ptp"], &[]);
    let one = json!({"type": "host-local", "subnet": "10.78.0.0/24", "rangeStart": "10.78.0.10",
                     "rangeEnd": "10.78.0.10", "dataDir": "{dir}/ipam"});
    let bridge = bridge_list(&world, "1.1.0", "twhl6", one.clone());
    let ptp =
        world.list(json!({"cniVersion": "1.1.0", "name": NET, "plugins": [{"type": "ptp", "ipam": one}]}));
    assert!(world.runtime.status(&bridge).unwrap());
    let pod = TestNs::new("hlstatp");
    let rt = world.rt("a", &pod);
    world.add(&bridge, &rt);
    let not_available = |net: &LoadedList, how: &str| {
        let err = world.runtime.status(net).unwrap_err();
        assert_eq!(err.to_cni().code.code(), 50, "{how}: {err}");
        assert!(err.to_string().contains("no IP addresses available in range set"), "{how}: {err}");
    };
    not_available(&bridge, "bridge, host-local in-process");
    not_available(&ptp, "ptp, host-local in-process");
    let own = world.dir.join("bin").join("host-local");
    std::fs::remove_file(&own).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_twill-cni"), &own).unwrap();
    not_available(&bridge, "bridge, host-local executed");
    world.runtime.del(&bridge, &rt).unwrap();
    assert!(world.runtime.status(&bridge).unwrap(), "available again after DEL");
    assert!(world.runtime.status(&ptp).unwrap());
}
