//! twill's tuning plugin end to end, chained after twill's bridge: every spec version, DEL
//! restoring what was there before, `args.cni`, bad inputs leaving nothing, undo on failure
//! and DEL without the container.

mod support;

use std::path::PathBuf;

use cni_exec::LoadedList;
use serde_json::{Value, json};
use support::{VERSIONS, World};
use testkit::TestNs;

const MAC: &str = "02:42:ac:11:00:99";

fn world(tag: &str, version: &str) -> World {
    // The reference host-local stops at 1.0.0; twill's answers 1.1.0.
    if version == "1.1.0" {
        World::new(tag, &["bridge", "tuning", "host-local"], &[])
    } else {
        World::new(tag, &["bridge", "tuning"], &["host-local"])
    }
}

fn tuning_list(world: &World, version: &str, subnet: &str, tuning: Value) -> LoadedList {
    let mut tuner = json!({"type": "tuning", "dataDir": "{dir}/tuning"});
    for (k, v) in tuning.as_object().unwrap() {
        tuner[k] = v.clone();
    }
    world.list(json!({
        "cniVersion": version,
        "name": "tunet",
        "plugins": [
            {"type": "bridge", "bridge": "twtu0", "isGateway": true,
             "ipam": {"type": "host-local", "subnet": subnet, "dataDir": "{dir}/ipam"}},
            tuner
        ]
    }))
}

/// The same network with tuning alone: DEL then leaves the interface, so restoring shows.
fn tuning_only(net: &LoadedList) -> LoadedList {
    let mut only = net.clone();
    only.list.plugins.remove(0);
    only
}

fn full() -> Value {
    json!({
        "mac": MAC, "mtu": 1400, "txQLen": 42, "promisc": true, "allmulti": true,
        "sysctl": {"net.core.somaxconn": "777", "net.ipv4.conf.IFNAME.arp_ignore": "2"}
    })
}

/// `ip -j link show eth0` in the pod.
fn eth0(pod: &TestNs) -> Value {
    pod.exec_json(&["ip", "-j", "link", "show", "eth0"])[0].clone()
}

fn flags(link: &Value) -> Vec<String> {
    link["flags"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect()
}

fn sysctl(pod: &TestNs, key: &str) -> String {
    pod.exec_ok(&["sysctl", "-n", key]).trim().to_string()
}

fn backups(world: &World) -> Vec<PathBuf> {
    std::fs::read_dir(world.dir.join("tuning")).into_iter().flatten().flatten().map(|e| e.path()).collect()
}

/// What ADD may change, as the pod shows it.
fn state(pod: &TestNs) -> (Value, Value, Value, bool, bool, String, String) {
    let l = eth0(pod);
    let f = flags(&l);
    (
        l["address"].clone(),
        l["mtu"].clone(),
        l["txqlen"].clone(),
        f.iter().any(|x| x == "PROMISC"),
        f.iter().any(|x| x == "ALLMULTI"),
        sysctl(pod, "net.core.somaxconn"),
        sysctl(pod, "net.ipv4.conf.eth0.arp_ignore"),
    )
}

fn lifecycle(version: &str, tag: &str) {
    let world = world(tag, version);
    let pod = TestNs::new(&format!("{tag}p"));
    let net = tuning_list(&world, version, "10.80.0.0/24", full());
    let rt = world.rt("pod1", &pod);
    let result = world.add(&net, &rt);
    let l = eth0(&pod);
    assert_eq!(
        (l["address"].as_str(), l["mtu"].as_u64(), l["txqlen"].as_u64()),
        (Some(MAC), Some(1400), Some(42))
    );
    assert!(
        flags(&l).contains(&"PROMISC".into()) && flags(&l).contains(&"ALLMULTI".into()),
        "{version}: {l}"
    );
    assert_eq!(sysctl(&pod, "net.core.somaxconn"), "777");
    assert_eq!(sysctl(&pod, "net.ipv4.conf.eth0.arp_ignore"), "2");
    if let Some(iface) = result.interfaces.iter().find(|i| i.name == "eth0") {
        assert_eq!(iface.mac.as_deref(), Some(MAC), "{version}: result carries the new MAC");
    }
    assert_eq!(backups(&world), vec![world.dir.join("tuning/pod1_eth0.json")]);
    if cni_spec::Version::parse(version).unwrap().supports_check() {
        world.runtime.check(&net, &rt).unwrap_or_else(|e| panic!("{version} check: {e}"));
    }
    world.runtime.del(&net, &rt).unwrap_or_else(|e| panic!("{version} del: {e}"));
    assert!(backups(&world).is_empty(), "{version}: backup removed");
    world.runtime.del(&net, &rt).unwrap_or_else(|e| panic!("{version} second del: {e}"));
    if version == "1.1.0" {
        world.runtime.gc(&net, &[]).unwrap();
    }
}

#[test]
fn lifecycle_every_version() {
    for (i, version) in VERSIONS.iter().enumerate() {
        lifecycle(version, &format!("tu{i}"));
    }
}

#[test]
fn del_restores_what_was_there() {
    let world = world("turest", "1.0.0");
    let pod = TestNs::new("turestp");
    let net = tuning_list(&world, "1.0.0", "10.81.0.0/24", full());
    let rt = world.rt("rest", &pod);
    // The bridge alone first, to see the interface as tuning finds it.
    let mut bridge_only = net.clone();
    bridge_only.list.plugins.truncate(1);
    world.add(&bridge_only, &rt);
    let before = state(&pod);
    world.runtime.del(&bridge_only, &rt).unwrap();
    let result = world.add(&net, &rt);
    assert_eq!(result.interfaces[2].mac.as_deref(), Some(MAC));
    let tuned = state(&pod);
    assert_ne!(tuned, before);
    let saved: Value =
        serde_json::from_slice(&std::fs::read(world.dir.join("tuning/rest_eth0.json")).unwrap()).unwrap();
    world.runtime.del(&tuning_only(&net), &rt).unwrap();
    let restored = state(&pod);
    // The second ADD made a new veth with a new random MAC: the MAC tuning replaced is in the
    // backup; everything else is as the bridge leaves it.
    assert_eq!(restored.0, saved["mac"], "MAC restored");
    assert_ne!(restored.0.as_str(), Some(MAC));
    assert_eq!(
        (&restored.1, &restored.2, restored.3, restored.4),
        (&before.1, &before.2, before.3, before.4)
    );
    assert_eq!((&restored.5, &restored.6), (&before.5, &before.6), "sysctls restored");
    assert!(backups(&world).is_empty());
    world.runtime.del(&bridge_only, &rt).unwrap();
}

#[test]
fn args_cni_overrides_the_static_options() {
    let world = world("tuargs", "1.0.0");
    let pod = TestNs::new("tuargsp");
    let tuning = json!({"mtu": 1400, "args": {"cni": {"mtu": 1300, "mac": MAC, "sysctl": {"net.core.somaxconn": "555"}}}});
    let net = tuning_list(&world, "1.0.0", "10.82.0.0/24", tuning);
    let rt = world.rt("args", &pod);
    world.add(&net, &rt);
    let l = eth0(&pod);
    assert_eq!((l["mtu"].as_u64(), l["address"].as_str()), (Some(1300), Some(MAC)));
    assert_eq!(sysctl(&pod, "net.core.somaxconn"), "555");
    world.runtime.check(&net, &rt).unwrap();
    pod.exec_ok(&["ip", "link", "set", "eth0", "mtu", "1280"]);
    let err = world.runtime.check(&net, &rt).unwrap_err();
    assert!(err.to_string().contains("eth0 has MTU 1280, configured 1300"), "{err}");
    world.runtime.del(&net, &rt).unwrap();
}

#[test]
fn bad_inputs_are_code_7_and_change_nothing() {
    let world = world("tubad", "1.0.0");
    let pod = TestNs::new("tubadp");
    let cases = [
        (json!({"sysctl": {"kernel.hostname": "x"}}), "kernel.hostname"),
        (json!({"sysctl": {"net..ipv4.ip_forward": "1"}}), "\"..\""),
        (json!({"sysctl": {"net.ipv4.conf.IFNAME.no_such_thing": "1"}}), "does not exist"),
        (json!({"mac": "01:00:5e:00:00:01"}), "multicast"),
        (json!({"mtu": -1}), "mtu -1"),
        (json!({"txQLen": -1}), "txQLen -1"),
    ];
    for (i, (bad, want)) in cases.into_iter().enumerate() {
        let net = tuning_list(&world, "1.0.0", "10.83.0.0/24", bad.clone());
        let rt = world.rt(&format!("bad{i}"), &pod);
        let err = world.runtime.add(&net, &rt).unwrap_err();
        assert_eq!(err.to_cni().code.code(), 7, "{bad}: {err}");
        assert!(err.to_string().contains(want), "{bad}: {err}");
        assert!(backups(&world).is_empty(), "{bad}");
        world.runtime.del(&net, &rt).unwrap_or_else(|e| panic!("{bad}: del: {e}"));
    }
}

#[test]
fn failure_half_way_restores_and_leaves_no_backup() {
    let world = world("tuhalf", "1.0.0");
    let pod = TestNs::new("tuhalfp");
    let somaxconn = sysctl(&pod, "net.core.somaxconn");
    // Keys apply in order: somaxconn is written before the kernel refuses rp_filter.
    let tuning = json!({"mtu": 1400, "sysctl": {"net.core.somaxconn": "999", "net.ipv4.conf.IFNAME.rp_filter": "banana"}});
    let net = tuning_list(&world, "1.0.0", "10.84.0.0/24", tuning);
    let rt = world.rt("half", &pod);
    let err = world.runtime.add(&net, &rt).unwrap_err();
    assert_eq!(err.to_cni().code.code(), 7, "{err}");
    assert!(err.to_string().contains("refuses the value of net.ipv4.conf.IFNAME.rp_filter"), "{err}");
    assert_eq!(sysctl(&pod, "net.core.somaxconn"), somaxconn, "undone");
    assert_ne!(eth0(&pod)["mtu"].as_u64(), Some(1400));
    assert!(backups(&world).is_empty());
    world.runtime.del(&net, &rt).unwrap();
}

#[test]
fn missing_prev_result_is_code_7() {
    let world = world("tunoprev", "1.0.0");
    let pod = TestNs::new("tunoprevp");
    let net = world.list(json!({
        "cniVersion": "1.0.0", "name": "tunet", "plugins": [{"type": "tuning", "mtu": 1400}]
    }));
    let err = world.runtime.add(&net, &world.rt("noprev", &pod)).unwrap_err();
    assert_eq!(err.to_cni().code.code(), 7, "{err}");
    assert!(err.to_string().contains("must be called as a chained plugin"), "{err}");
}

#[test]
fn del_without_the_container_drops_the_backup() {
    let world = world("tugone", "1.0.0");
    let pod = TestNs::new("tugonep");
    let net = tuning_list(&world, "1.0.0", "10.85.0.0/24", full());
    let rt = world.rt("gone", &pod);
    world.add(&net, &rt);
    assert_eq!(backups(&world).len(), 1);
    drop(pod);
    world.runtime.del(&net, &rt).unwrap();
    assert!(backups(&world).is_empty());
}

/// A crash-style GC at 1.1.0: the runtime lost its result cache (no DEL is synthesised), and
/// GC with only `keep` valid drops the stale attachment's backup. Backups of other networks
/// and reference-written ones (no owner) in the same dataDir stay.
#[test]
fn gc_drops_backups_of_stale_attachments_of_its_network() {
    let world = world("tugc", "1.1.0");
    let (keep, stale) = (TestNs::new("tugck"), TestNs::new("tugcs"));
    let net = tuning_list(&world, "1.1.0", "10.86.0.0/24", full());
    world.add(&net, &world.rt("keep", &keep));
    world.add(&net, &world.rt("stale", &stale));
    let dir = world.dir.join("tuning");
    let saved: Value = serde_json::from_slice(&std::fs::read(dir.join("stale_eth0.json")).unwrap()).unwrap();
    assert_eq!(saved["owner"], "tunet/stale/eth0", "{saved}");
    std::fs::write(dir.join("other_eth0.json"), r#"{"mtu": 1500, "owner": "othernet/other/eth0"}"#).unwrap();
    std::fs::write(dir.join("ref_eth0.json"), r#"{"mtu": 1500}"#).unwrap();
    std::fs::remove_dir_all(world.dir.join("cache")).unwrap();

    let valid = cni_spec::Attachment { container_id: "keep".into(), ifname: "eth0".into() };
    let report = world.runtime.gc(&net, &[valid]).unwrap();
    assert!(report.deleted.is_empty() && report.gc_sent, "{report:?}");
    let mut left = backups(&world);
    left.sort();
    let names = ["keep_eth0.json", "other_eth0.json", "ref_eth0.json"];
    assert_eq!(left, names.map(|n| dir.join(n)).to_vec());
    world.runtime.del(&net, &world.rt("keep", &keep)).unwrap();
    world.runtime.del(&net, &world.rt("stale", &stale)).unwrap();
    assert_eq!(backups(&world).len(), 2, "the foreign backups are DEL's business");
}
