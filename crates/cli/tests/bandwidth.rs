//! twill's bandwidth plugin end to end, chained after twill's bridge: every chained spec
//! version, both directions measured with iperf3 between the pod and the fake host, bad
//! inputs, undo on failure and DEL without the container.

#[path = "support/iperf.rs"]
mod iperf;
mod support;

use std::process::Command;
use std::time::Duration;

use cni_exec::{LoadedList, RuntimeConf};
use cni_spec::Attachment;
use iperf::{assert_near, iperf};
use serde_json::{Value, json};
use support::World;
use testkit::{TestNs, wait_until};

/// 20 Mbit/s with a 25 kB bucket.
const RATE: u64 = 20_000_000;
const BURST: u64 = 1000000;

fn bw_list(world: &World, version: &str, bridge: &str, subnet: &str, bw: Value) -> LoadedList {
    let mut shaper = json!({"type": "bandwidth", "capabilities": {"bandwidth": true}});
    for (k, v) in bw.as_object().unwrap() {
        shaper[k] = v.clone();
    }
    world.list(json!({
        "cniVersion": version,
        "name": "bwnet",
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": true,
             "ipam": {"type": "host-local", "subnet": subnet, "dataDir": "{dir}/ipam"}},
            shaper
        ]
    }))
}

fn with_caps(mut rt: RuntimeConf, ingress: u64, egress: u64) -> RuntimeConf {
    rt.capability_args.insert(
        "bandwidth".into(),
        json!({"ingressRate": ingress, "ingressBurst": BURST, "egressRate": egress, "egressBurst": BURST}),
    );
    rt
}

/// A fake host with twill's bridge and bandwidth; `tag` must be unique per test (it names
/// the world's temp dir).
fn world(tag: &str) -> World {
    World::new(tag, &["bridge", "bandwidth"], &["host-local"])
}

fn qdiscs(ns: &TestNs, dev: &str) -> Vec<Value> {
    ns.exec_json(&["tc", "-j", "qdisc", "show", "dev", dev]).as_array().cloned().unwrap_or_default()
}

fn has_qdisc(ns: &TestNs, dev: &str, kind: &str) -> bool {
    qdiscs(ns, dev).iter().any(|q| q["kind"] == kind)
}

fn ifbs(world: &World) -> Vec<String> {
    world.host_links().into_iter().filter(|l| l.starts_with("bwp")).collect()
}

fn lifecycle(version: &str, tag: &str) {
    // The reference host-local stops at 1.0.0; twill's answers 1.1.0.
    let world = if version == "1.1.0" {
        World::new(tag, &["bridge", "bandwidth", "host-local"], &[])
    } else {
        world(tag)
    };
    let pod = TestNs::new(&format!("{tag}p"));
    let net = bw_list(&world, version, "twbw0", "10.70.0.0/24", json!({}));
    let rt = with_caps(world.rt("pod1", &pod), RATE, RATE / 2);
    let result = world.add(&net, &rt);
    let veth = result.interfaces[1].name.clone();
    let ifb = &result.interfaces.last().unwrap().name;
    assert!(ifb.starts_with("bwp") && ifb.len() == 15, "{version}: ifb in result: {ifb}");
    assert_eq!(ifbs(&world), vec![ifb.clone()]);
    // No IPv6 link-local on the IFB (nor its route in the host's fe80::/64 node).
    assert_eq!(support::addrs(&world.host, ifb), Vec::<String>::new(), "{version}: ifb has no address");
    let root = qdiscs(&world.host, &veth);
    let tbf = root.iter().find(|q| q["kind"] == "tbf").unwrap_or_else(|| panic!("{version}: {root:?}"));
    assert_eq!(tbf["options"]["rate"], RATE / 8, "{version}: {tbf}");
    assert!(has_qdisc(&world.host, &veth, "ingress"), "{version}");
    let on_ifb = qdiscs(&world.host, ifb);
    let tbf = on_ifb.iter().find(|q| q["kind"] == "tbf").unwrap();
    assert_eq!(tbf["options"]["rate"], RATE / 16, "{version}: {tbf}");
    if cni_spec::Version::parse(version).unwrap().supports_check() {
        world.runtime.check(&net, &rt).unwrap_or_else(|e| panic!("{version} check: {e}"));
    }
    world.runtime.del(&net, &rt).unwrap_or_else(|e| panic!("{version} del: {e}"));
    assert!(ifbs(&world).is_empty(), "{version}: ifb removed");
    world.runtime.del(&net, &rt).unwrap_or_else(|e| panic!("{version} second del: {e}"));
    if version == "1.1.0" {
        world.runtime.gc(&net, &[]).unwrap();
    }
}

#[test]
fn lifecycle_0_3_0() {
    lifecycle("0.3.0", "bw030");
}
#[test]
fn lifecycle_0_3_1() {
    lifecycle("0.3.1", "bw031");
}
#[test]
fn lifecycle_0_4_0() {
    lifecycle("0.4.0", "bw040");
}
#[test]
fn lifecycle_1_0_0() {
    lifecycle("1.0.0", "bw100");
}
#[test]
fn lifecycle_1_1_0() {
    lifecycle("1.1.0", "bw110");
}

#[test]
fn versions_before_chaining_are_refused() {
    let world = world("bwold");
    let pod = TestNs::new("bwoldp");
    let net = bw_list(&world, "0.2.0", "twbw1", "10.71.0.0/24", json!({}));
    let rt = with_caps(world.rt("old", &pod), RATE, RATE);
    let err = world.runtime.add(&net, &rt).unwrap_err();
    assert_eq!(err.to_cni().code.code(), 1, "{err}");
    assert!(ifbs(&world).is_empty());
    // DEL of that list fails the same way; the bridge alone cleans up.
    assert_eq!(world.runtime.del(&net, &rt).unwrap_err().to_cni().code.code(), 1);
    let mut bridge_only = net.clone();
    bridge_only.list.plugins.truncate(1);
    world.runtime.del(&bridge_only, &rt).unwrap();
}

#[test]
fn rates_hold_in_both_directions() {
    let world = world("bwrate");
    let pod = TestNs::new("bwratep");
    let net = bw_list(&world, "1.0.0", "twbw2", "10.72.0.0/24", json!({}));
    let (ingress, egress) = (RATE, RATE / 2);
    let rt = with_caps(world.rt("rate", &pod), ingress, egress);
    world.add(&net, &rt);
    assert_near("into the pod (tbf on the host veth)", ingress, || {
        iperf(&world.host, "10.72.0.1", &pod, true, 2)
    });
    assert_near("out of the pod (ifb)", egress, || iperf(&world.host, "10.72.0.1", &pod, false, 2));
    world.runtime.del(&net, &rt).unwrap();
}

#[test]
fn static_options_shape_without_capabilities() {
    let world = world("bwstat");
    let pod = TestNs::new("bwstatp");
    let bw = json!({"ingressRate": RATE, "ingressBurst": BURST});
    let net = bw_list(&world, "1.0.0", "twbw3", "10.73.0.0/24", bw);
    let rt = world.rt("stat", &pod);
    let result = world.add(&net, &rt);
    let veth = &result.interfaces[1].name;
    assert!(has_qdisc(&world.host, veth, "tbf"));
    assert!(!has_qdisc(&world.host, veth, "ingress"), "egress is not limited");
    assert!(ifbs(&world).is_empty());
    world.runtime.check(&net, &rt).unwrap();
    world.runtime.del(&net, &rt).unwrap();
}

#[test]
fn check_notices_a_changed_bucket() {
    let world = world("bwchk");
    let pod = TestNs::new("bwchkp");
    let net = bw_list(&world, "1.0.0", "twbw4", "10.74.0.0/24", json!({}));
    let rt = with_caps(world.rt("chk", &pod), RATE, RATE);
    let result = world.add(&net, &rt);
    let veth = &result.interfaces[1].name;
    world.host.exec_ok(&[
        "tc", "qdisc", "replace", "dev", veth, "root", "handle", "1:", "tbf", "rate", "1mbit", "burst",
        "25000", "latency", "25ms",
    ]);
    let err = world.runtime.check(&net, &rt).unwrap_err();
    assert!(err.to_string().contains("expected rate 2500000 B/s"), "{err}");
    world.runtime.del(&net, &rt).unwrap();
    assert!(wait_until(Duration::from_secs(10), || !world.host_links().contains(veth)));
}

#[test]
fn bad_values_are_code_7_and_leave_nothing() {
    let world = world("bwbad");
    let pod = TestNs::new("bwbadp");
    let cases = [
        json!({"ingressRate": -1, "ingressBurst": BURST}),
        json!({"egressRate": RATE}),
        json!({"egressBurst": BURST}),
        json!({"ingressRate": RATE, "ingressBurst": 40_000_000_000u64}),
        json!({"ingressRate": 1e20, "ingressBurst": BURST}),
    ];
    for (i, bad) in cases.into_iter().enumerate() {
        let net = bw_list(&world, "1.0.0", "twbw5", "10.75.0.0/24", bad.clone());
        let rt = world.rt(&format!("bad{i}"), &pod);
        let err = world.runtime.add(&net, &rt).unwrap_err();
        assert_eq!(err.to_cni().code.code(), 7, "{bad}: {err}");
        let veths: Vec<String> = world.host_links().into_iter().filter(|l| l.starts_with("veth")).collect();
        for veth in &veths {
            assert!(qdiscs(&world.host, veth).iter().all(|q| q["kind"] != "tbf" && q["kind"] != "ingress"));
        }
        assert!(ifbs(&world).is_empty(), "{bad}");
        world.runtime.del(&net, &rt).unwrap();
    }
}

#[test]
fn missing_prev_result_is_code_7() {
    let world = world("bwnoprev");
    let pod = TestNs::new("bwnoprevp");
    let net = world.list(json!({
        "cniVersion": "1.0.0", "name": "bwnet",
        "plugins": [{"type": "bandwidth", "ingressRate": RATE, "ingressBurst": BURST}]
    }));
    let err = world.runtime.add(&net, &world.rt("noprev", &pod)).unwrap_err();
    assert_eq!(err.to_cni().code.code(), 7, "{err}");
    assert!(err.to_string().contains("must be called as a chained plugin"), "{err}");
}

#[test]
fn failure_half_way_undoes_the_ingress_bucket() {
    let world = world("bwundo");
    let pod = TestNs::new("bwundop");
    let net = bw_list(&world, "1.0.0", "twbw6", "10.76.0.0/24", json!({}));
    let rt = with_caps(world.rt("undo", &pod), RATE, RATE);
    // Something already holds the IFB's name: creating it fails after the root tbf exists.
    let taken = twill_ifb_name("bwnet", "undo");
    world.host.exec_ok(&["ip", "link", "add", &taken, "type", "veth", "peer", "name", "twbwpeer"]);
    let err = world.runtime.add(&net, &rt).unwrap_err();
    assert!(err.to_string().contains(&taken), "{err}");
    let veth = world.host_links().into_iter().find(|l| l.starts_with("veth")).unwrap();
    assert!(!has_qdisc(&world.host, &veth, "tbf"), "the bucket was undone");
    assert!(!has_qdisc(&world.host, &veth, "ingress"));
    world.runtime.del(&net, &rt).unwrap();
    assert!(world.host_links().contains(&taken), "DEL leaves a non-ifb link of that name alone");
}

#[test]
fn del_without_the_container_removes_the_ifb() {
    let world = world("bwgone");
    let pod = TestNs::new("bwgonep");
    let net = bw_list(&world, "1.0.0", "twbw7", "10.77.0.0/24", json!({}));
    let rt = with_caps(world.rt("gone", &pod), RATE, RATE);
    world.add(&net, &rt);
    assert_eq!(ifbs(&world).len(), 1);
    drop(pod);
    world.runtime.del(&net, &rt).unwrap();
    assert!(ifbs(&world).is_empty());
    assert!(wait_until(Duration::from_secs(10), || world
        .host_links()
        .iter()
        .all(|l| !l.starts_with("veth"))));
}

/// The alias twill records on an IFB, as `ip -d link show` reports it.
fn ifb_alias(world: &World, ifb: &str) -> Value {
    world.host.exec_json(&["ip", "-j", "-d", "link", "show", "dev", ifb])[0]["ifalias"].clone()
}

/// A crash-style GC: both attachments were added, the runtime lost its result cache (so it
/// synthesises no DEL), and GC with only `keep` valid removes the stale IFB with the redirect
/// and bucket on its veth; the valid one's shaping, and other networks' IFBs, stay.
#[test]
fn gc_removes_ifbs_whose_del_never_came() {
    let world = World::new("bwgc", &["bridge", "bandwidth", "host-local"], &[]);
    let (keep, stale) = (TestNs::new("bwgck"), TestNs::new("bwgcs"));
    let net = bw_list(&world, "1.1.0", "twbw8", "10.78.0.0/24", json!({}));
    let rk = with_caps(world.rt("keep", &keep), RATE, RATE);
    let rs = with_caps(world.rt("stale", &stale), RATE, RATE);
    let (res_k, res_s) = (world.add(&net, &rk), world.add(&net, &rs));
    let (veth_k, veth_s) = (&res_k.interfaces[1].name, &res_s.interfaces[1].name);
    let (ifb_k, ifb_s) = (twill_ifb_name("bwnet", "keep"), twill_ifb_name("bwnet", "stale"));
    assert_eq!(ifb_alias(&world, &ifb_s), "twill bwnet/stale/eth0");
    std::fs::remove_dir_all(world.dir.join("cache")).unwrap();

    let mut other = net.clone();
    other.list.name = "bwother".into();
    world.runtime.gc(&other, &[]).unwrap();
    assert_eq!(ifbs(&world).len(), 2, "another network's GC leaves these IFBs alone");

    let valid = Attachment { container_id: "keep".into(), ifname: "eth0".into() };
    let report = world.runtime.gc(&net, &[valid]).unwrap();
    assert!(report.deleted.is_empty() && report.gc_sent, "{report:?}");
    assert_eq!(ifbs(&world), vec![ifb_k.clone()], "the stale IFB is gone, the valid one stays");
    assert!(!has_qdisc(&world.host, veth_s, "ingress") && !has_qdisc(&world.host, veth_s, "tbf"));
    assert!(has_qdisc(&world.host, veth_k, "ingress") && has_qdisc(&world.host, veth_k, "tbf"));
    assert!(has_qdisc(&world.host, &ifb_k, "tbf"));
    world.runtime.gc(&net, &[]).unwrap();
    assert!(ifbs(&world).is_empty(), "an empty valid list leaves no IFB of the network");
    world.runtime.del(&net, &rs).unwrap();
    world.runtime.del(&net, &rk).unwrap();
    assert!(wait_until(Duration::from_secs(10), || world
        .host_links()
        .iter()
        .all(|l| !l.starts_with("veth"))));
}

/// The IFB name as the reference derives it (`bwp` + SHA-512 of network and container id).
fn twill_ifb_name(network: &str, container_id: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", &format!("printf %s '{network}{container_id}' | sha512sum")])
        .output()
        .unwrap();
    format!("bwp{}", &String::from_utf8_lossy(&out.stdout)[..12])
}
