//! twill's sbr plugin end to end, chained after twill's bridge: every spec version, table
//! choice around tables in use, dual stack, a fixed table, source hints, DEL and CHECK.

mod support;

use cni_exec::LoadedList;
use serde_json::{Value, json};
use support::{VERSIONS, World};
use testkit::TestNs;

fn world(tag: &str, version: &str) -> World {
    // The reference host-local stops at 1.0.0; twill's answers 1.1.0.
    if version == "1.1.0" {
        World::new(tag, &["bridge", "sbr", "host-local"], &[])
    } else {
        World::new(tag, &["bridge", "sbr"], &["host-local"])
    }
}

fn sbr_list(world: &World, version: &str, ipam: Value, sbr: Value) -> LoadedList {
    let mut router = json!({"type": "sbr"});
    for (k, v) in sbr.as_object().unwrap() {
        router[k] = v.clone();
    }
    let mut ipam = ipam;
    ipam["type"] = json!("host-local");
    ipam["dataDir"] = json!("{dir}/ipam");
    world.list(json!({
        "cniVersion": version,
        "name": "sbrnet",
        "plugins": [
            {"type": "bridge", "bridge": "twsbr0", "isDefaultGateway": true, "ipam": ipam},
            router
        ]
    }))
}

fn v4(subnet: &str) -> Value {
    json!({"subnet": subnet})
}

fn rules(pod: &TestNs) -> String {
    pod.exec_ok(&["ip", "rule", "show"]) + &pod.exec_ok(&["ip", "-6", "rule", "show"])
}

/// Both families' routes of table `t`; a table the kernel has never seen is empty.
fn table(pod: &TestNs, t: &str) -> String {
    let show = |family: &str| {
        let out = pod.exec(&["ip", family, "route", "show", "table", t]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    show("-4") + &show("-6")
}

fn main_routes(pod: &TestNs) -> String {
    pod.exec_ok(&["ip", "route", "show", "table", "main"])
}

fn ping_from(pod: &TestNs, src: &str, dst: &str) -> bool {
    // Until one echo is answered, for up to 3 s.
    pod.exec(&["ping", "-c", "1", "-w", "3", "-I", src, dst]).status.success()
}

fn lifecycle(version: &str, tag: &str) {
    let world = world(tag, version);
    let pod = TestNs::new(&format!("{tag}p"));
    let net = sbr_list(&world, version, v4("10.60.0.0/24"), json!({}));
    let rt = world.rt("pod1", &pod);
    let result = world.add(&net, &rt);
    assert_eq!(result.ips[0].address.to_string(), "10.60.0.2/24", "{version}: result passed through");
    assert!(rules(&pod).contains("from 10.60.0.2 lookup 100"), "{version}: {}", rules(&pod));
    let t100 = table(&pod, "100");
    assert!(t100.contains("default via 10.60.0.1 dev eth0"), "{version}: {t100}");
    assert!(t100.contains("10.60.0.0/24 dev eth0"), "{version}: {t100}");
    assert!(!main_routes(&pod).contains("eth0"), "{version}: routes left the main table");
    assert!(ping_from(&pod, "10.60.0.2", "10.60.0.1"), "{version}: routed by table 100");
    if cni_spec::Version::parse(version).unwrap().supports_check() {
        world.runtime.check(&net, &rt).unwrap_or_else(|e| panic!("{version} check: {e}"));
    }
    // Tuning-style: DEL of sbr alone leaves the interface, so its cleanup shows.
    let mut sbr_only = net.clone();
    sbr_only.list.plugins.remove(0);
    world.runtime.del(&sbr_only, &rt).unwrap_or_else(|e| panic!("{version} del: {e}"));
    assert!(!rules(&pod).contains("10.60.0.2"), "{version}: rule removed");
    assert!(table(&pod, "100").is_empty(), "{version}: table 100 emptied");
    world.runtime.del(&net, &rt).unwrap_or_else(|e| panic!("{version} full del: {e}"));
    world.runtime.del(&net, &rt).unwrap_or_else(|e| panic!("{version} second del: {e}"));
    if version == "1.1.0" {
        world.runtime.gc(&net, &[]).unwrap();
    }
}

#[test]
fn lifecycle_every_version() {
    for (i, version) in VERSIONS.iter().enumerate() {
        lifecycle(version, &format!("sbr{i}"));
    }
}

#[test]
fn dual_stack_skips_tables_in_use() {
    let world = world("sbrds", "1.0.0");
    let pod = TestNs::new("sbrdsp");
    pod.exec_ok(&["ip", "route", "add", "blackhole", "10.250.0.0/16", "table", "100"]);
    pod.exec_ok(&["ip", "rule", "add", "from", "10.251.0.1", "lookup", "101"]);
    let ipam = json!({"ranges": [[{"subnet": "10.61.0.0/24"}], [{"subnet": "fd61::/64"}]]});
    let net = sbr_list(&world, "1.0.0", ipam, json!({}));
    let rt = world.rt("ds", &pod);
    world.add(&net, &rt);
    let r = rules(&pod);
    assert!(r.contains("from 10.61.0.2 lookup 102"), "{r}");
    assert!(r.contains("from fd61::2 lookup 103"), "{r}");
    assert!(table(&pod, "103").contains("default via fd61::1 dev eth0"), "{}", table(&pod, "103"));
    world.runtime.check(&net, &rt).unwrap();
    pod.exec_ok(&["ip", "-6", "rule", "del", "from", "fd61::2", "lookup", "103"]);
    let err = world.runtime.check(&net, &rt).unwrap_err();
    assert!(err.to_string().contains("no rule from fd61::2"), "{err}");
    world.runtime.del(&net, &rt).unwrap();
    assert!(!rules(&pod).contains("10.61.0.2"));
    assert!(rules(&pod).contains("from 10.251.0.1 lookup 101"), "other rules stay");
}

#[test]
fn fixed_table_adds_rules_only() {
    let world = world("sbrfix", "1.0.0");
    let pod = TestNs::new("sbrfixp");
    let net = sbr_list(&world, "1.0.0", v4("10.62.0.0/24"), json!({"table": 4242}));
    let rt = world.rt("fix", &pod);
    world.add(&net, &rt);
    assert!(rules(&pod).contains("from 10.62.0.2 lookup 4242"), "{}", rules(&pod));
    assert!(main_routes(&pod).contains("default via 10.62.0.1 dev eth0"), "routes stay in main");
    assert!(table(&pod, "4242").is_empty(), "the table is the administrator's");
    world.runtime.check(&net, &rt).unwrap();
    world.runtime.del(&net, &rt).unwrap();
}

#[test]
fn source_hints_keep_the_subnet_reachable_without_a_source() {
    let world = world("sbrhint", "1.0.0");
    let pod = TestNs::new("sbrhintp");
    let gw = json!({"addSourceHints": true, "gateways": ["10.63.0.1"]});
    let net = sbr_list(&world, "1.0.0", v4("10.63.0.0/24"), gw);
    let rt = world.rt("hint", &pod);
    world.add(&net, &rt);
    let main = main_routes(&pod);
    assert!(main.contains("10.63.0.0/24 dev eth0 scope link src 10.63.0.2"), "{main}");
    assert!(!main.contains("default"), "{main}");
    assert!(support::ping(&pod, "10.63.0.1"), "subnet reachable through the main table");
    assert!(ping_from(&pod, "10.63.0.2", "10.63.0.1"));
    world.runtime.check(&net, &rt).unwrap();
    world.runtime.del(&net, &rt).unwrap();
}

#[test]
fn bad_inputs_are_code_7_and_leave_nothing() {
    let world = world("sbrbad", "1.0.0");
    let pod = TestNs::new("sbrbadp");
    for bad in [json!({"table": -1}), json!({"gateways": ["10.0.0.1", "10.0.0.2"]}), json!({"table": 254})] {
        let net = sbr_list(&world, "1.0.0", v4("10.64.0.0/24"), bad.clone());
        let rt = world.rt("bad", &pod);
        let err = world.runtime.add(&net, &rt).unwrap_err();
        assert_eq!(err.to_cni().code.code(), 7, "{bad}: {err}");
        assert!(!rules(&pod).contains("10.64.0."), "{bad}");
        world.runtime.del(&net, &rt).unwrap_or_else(|e| panic!("{bad}: del: {e}"));
    }
    let alone = world.list(json!({"cniVersion": "1.0.0", "name": "sbrnet", "plugins": [{"type": "sbr"}]}));
    let err = world.runtime.add(&alone, &world.rt("alone", &pod)).unwrap_err();
    assert_eq!(err.to_cni().code.code(), 7, "{err}");
}

#[test]
fn del_without_the_container_succeeds() {
    let world = world("sbrgone", "1.0.0");
    let pod = TestNs::new("sbrgonep");
    let net = sbr_list(&world, "1.0.0", v4("10.65.0.0/24"), json!({}));
    let rt = world.rt("gone", &pod);
    world.add(&net, &rt);
    drop(pod);
    world.runtime.del(&net, &rt).unwrap();
}
