//! twill's firewall plugin end to end, chained after twill's bridge: every chained spec
//! version, both backends, bridge isolation measured with pings between two bridges and an
//! outside namespace, GC of stale owners, and bad inputs.

mod support;

use cni_exec::LoadedList;
use cni_spec::Attachment;
use serde_json::{Value, json};
use support::{World, ping};
use testkit::TestNs;

fn world(tag: &str, version: &str) -> World {
    // The reference host-local stops at 1.0.0; twill's answers 1.1.0.
    if version == "1.1.0" {
        World::new(tag, &["bridge", "firewall", "host-local"], &[])
    } else {
        World::new(tag, &["bridge", "firewall"], &["host-local"])
    }
}

fn fw_list(world: &World, version: &str, name: &str, bridge: &str, subnet: &str, fw: Value) -> LoadedList {
    let mut firewall = json!({"type": "firewall"});
    for (k, v) in fw.as_object().unwrap() {
        firewall[k] = v.clone();
    }
    world.list(json!({
        "cniVersion": version,
        "name": name,
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isDefaultGateway": true,
             "ipam": {"type": "host-local", "subnet": subnet, "dataDir": "{dir}/ipam"}},
            firewall
        ]
    }))
}

fn table(world: &World) -> String {
    let out = world.host.exec(&["nft", "list", "table", "inet", "twill_firewall"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn iptables(world: &World) -> String {
    world.host.exec_ok(&["iptables-save", "-t", "filter"])
}

fn lifecycle(version: &str, tag: &str) {
    let world = world(tag, version);
    let pod = TestNs::new(&format!("{tag}p"));
    let net = fw_list(&world, version, "fwnet", "twfw0", "10.90.0.0/24", json!({}));
    let rt = world.rt("pod1", &pod);
    let result = world.add(&net, &rt);
    assert_eq!(result.ips[0].address.to_string(), "10.90.0.2/24", "{version}: result passed through");
    assert!(table(&world).contains("10.90.0.2 comment \"fwnet/pod1/eth0\""), "{version}: {}", table(&world));
    if cni_spec::Version::parse(version).unwrap().supports_check() {
        world.runtime.check(&net, &rt).unwrap_or_else(|e| panic!("{version} check: {e}"));
    }
    world.runtime.del(&net, &rt).unwrap_or_else(|e| panic!("{version} del: {e}"));
    assert!(!table(&world).contains("fwnet/pod1/eth0"), "{version}");
    world.runtime.del(&net, &rt).unwrap_or_else(|e| panic!("{version} second del: {e}"));
    if version == "1.1.0" {
        world.runtime.gc(&net, &[]).unwrap();
    }
}

#[test]
fn lifecycle_every_chained_version() {
    for (i, version) in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"].iter().enumerate() {
        lifecycle(version, &format!("fw{i}"));
    }
}

/// A namespace outside any bridge, routed through the fake host: `10.99.9.2` behind
/// `twfwext` (`10.99.9.1`).
fn outside(world: &World) -> TestNs {
    let ext = TestNs::new("fwext");
    let h = &world.host;
    h.exec_ok(&["ip", "link", "add", "twfwext", "type", "veth", "peer", "name", "eth0", "netns", ext.name()]);
    h.exec_ok(&["ip", "addr", "add", "10.99.9.1/24", "dev", "twfwext"]);
    h.exec_ok(&["ip", "link", "set", "twfwext", "up"]);
    ext.exec_ok(&["ip", "addr", "add", "10.99.9.2/24", "dev", "eth0"]);
    ext.exec_ok(&["ip", "link", "set", "eth0", "up"]);
    ext.exec_ok(&["ip", "route", "add", "default", "via", "10.99.9.1"]);
    ext
}

#[test]
fn same_bridge_drops_traffic_from_other_bridges_only() {
    let world = world("fwiso", "1.0.0");
    let (a, b) = (TestNs::new("fwisoa"), TestNs::new("fwisob"));
    let ext = outside(&world);
    let nets = |policy: &str| {
        let fw = json!({"ingressPolicy": policy});
        (
            fw_list(&world, "1.0.0", "fwa", "twfwa", "10.91.0.0/24", fw.clone()),
            fw_list(&world, "1.0.0", "fwb", "twfwb", "10.92.0.0/24", fw),
        )
    };
    let ip = |r: &cni_spec::CniResult| r.ips[0].address.addr().to_string();
    let (open_a, open_b) = nets("open");
    world.add(&open_a, &world.rt("a", &a));
    let open_rb = world.add(&open_b, &world.rt("b", &b));
    assert!(ping(&a, &ip(&open_rb)), "open: bridge to bridge");
    assert!(ping(&ext, &ip(&open_rb)), "open: outside to pod");
    world.runtime.del(&open_a, &world.rt("a", &a)).unwrap();
    world.runtime.del(&open_b, &world.rt("b", &b)).unwrap();

    let (iso_a, iso_b) = nets("same-bridge");
    let ra = world.add(&iso_a, &world.rt("a", &a));
    let rb = world.add(&iso_b, &world.rt("b", &b));
    let (a_ip, b_ip) = (ip(&ra), ip(&rb));
    let rules = table(&world);
    assert!(
        rules.contains("\"twfwa\" comment \"bridge twfwa\"")
            && rules.contains("\"twfwb\" comment \"bridge twfwb\""),
        "{rules}"
    );
    assert!(!ping(&a, &b_ip), "same-bridge: a cannot reach b");
    assert!(!ping(&b, &a_ip), "same-bridge: b cannot reach a");
    assert!(ping(&ext, &b_ip), "traffic from outside the isolated bridges still arrives");
    assert!(ping(&a, "10.91.0.1"), "the pod still reaches its gateway");
    world.runtime.check(&iso_a, &world.rt("a", &a)).unwrap();
    world.runtime.del(&iso_a, &world.rt("a", &a)).unwrap();
    world.runtime.del(&iso_b, &world.rt("b", &b)).unwrap();
    assert!(!table(&world).contains("fwa/a/eth0"));
}

#[test]
fn iptables_backend_opens_a_drop_policy_for_the_pod() {
    let world = world("fwipt", "1.0.0");
    let pod = TestNs::new("fwiptp");
    let ext = outside(&world);
    world.host.exec_ok(&["iptables", "-P", "FORWARD", "DROP"]);
    let net = fw_list(&world, "1.0.0", "fwnet", "twfw1", "10.93.0.0/24", json!({"backend": "iptables"}));
    let rt = world.rt("ipt", &pod);
    world.add(&net, &rt);
    let saved = iptables(&world);
    assert!(
        saved.contains("-A FORWARD -m comment --comment \"CNI firewall plugin rules\" -j CNI-FORWARD"),
        "{saved}"
    );
    assert!(
        saved.contains(
            "-A CNI-FORWARD -s 10.93.0.2/32 -m comment --comment \"twill fwnet/ipt/eth0\" -j ACCEPT"
        )
    );
    assert!(ping(&pod, "10.99.9.2"), "the pod's own connections pass the DROP policy");
    assert!(!ping(&ext, "10.93.0.2"), "new connections into the pod do not");
    world.runtime.check(&net, &rt).unwrap();
    world.runtime.del(&net, &rt).unwrap();
    let saved = iptables(&world);
    assert!(!saved.contains("twill fwnet/ipt/eth0"), "{saved}");
    assert!(saved.contains(":CNI-FORWARD"), "the shared chains stay, as in the reference");
    world.runtime.del(&net, &rt).unwrap();
}

#[test]
fn gc_removes_stale_owners_in_both_backends() {
    let world = world("fwgc", "1.1.0");
    let (p1, p2) = (TestNs::new("fwgc1"), TestNs::new("fwgc2"));
    for (backend, bridge, subnet) in
        [("nftables", "twfw2", "10.94.0.0/24"), ("iptables", "twfw3", "10.95.0.0/24")]
    {
        let net = fw_list(&world, "1.1.0", "fwgc", bridge, subnet, json!({"backend": backend}));
        world.add(&net, &world.rt("keep", &p1));
        world.add(&net, &world.rt("stale", &p2));
        // The runtime forgets `stale` (as after a crash): only the plugin's GC can find it.
        std::fs::remove_dir_all(world.dir.join("cache")).unwrap();
        let keep = Attachment { container_id: "keep".into(), ifname: "eth0".into() };
        world.runtime.gc(&net, &[keep]).unwrap();
        let state = format!("{}{}", table(&world), iptables(&world));
        assert!(!state.contains("fwgc/stale/eth0"), "{backend}: {state}");
        assert!(state.contains("fwgc/keep/eth0"), "{backend}: {state}");
        world.runtime.del(&net, &world.rt("keep", &p1)).unwrap();
        world.runtime.del(&net, &world.rt("stale", &p2)).unwrap();
    }
}

#[test]
fn gc_drops_the_isolation_of_vanished_bridges() {
    let world = world("fwgcbr", "1.1.0");
    let pod = TestNs::new("fwgcbrp");
    let net = fw_list(&world, "1.1.0", "fwbr", "twfw4", "10.96.0.0/24", json!({"ingressPolicy": "isolated"}));
    world.add(&net, &world.rt("p", &pod));
    assert!(table(&world).contains("\"twfw4\" comment \"bridge twfw4\""));
    world.runtime.del(&net, &world.rt("p", &pod)).unwrap();
    assert!(table(&world).contains("bridge twfw4"), "isolation outlives the pod, as in the reference");
    world.host.exec_ok(&["ip", "link", "del", "twfw4"]);
    world.runtime.gc(&net, &[]).unwrap();
    assert!(!table(&world).contains("twfw4"), "{}", table(&world));
}

#[test]
fn bad_inputs_have_clear_codes_and_leave_nothing() {
    let world = world("fwbad", "1.0.0");
    let pod = TestNs::new("fwbadp");
    for (bad, code) in [
        (json!({"ingressPolicy": "closed"}), 7),
        (json!({"backend": "pf"}), 7),
        (json!({"backend": "firewalld"}), 2),
    ] {
        let net = fw_list(&world, "1.0.0", "fwnet", "twfw5", "10.97.0.0/24", bad.clone());
        let rt = world.rt("bad", &pod);
        let err = world.runtime.add(&net, &rt).unwrap_err();
        assert_eq!(err.to_cni().code.code(), code, "{bad}: {err}");
        assert!(!table(&world).contains("fwnet/bad"), "{bad}");
        world.runtime.del(&net, &rt).unwrap_or_else(|e| panic!("{bad}: del: {e}"));
    }
    let alone =
        world.list(json!({"cniVersion": "1.0.0", "name": "fwnet", "plugins": [{"type": "firewall"}]}));
    let err = world.runtime.add(&alone, &world.rt("alone", &pod)).unwrap_err();
    assert_eq!(err.to_cni().code.code(), 7, "{err}");
    assert!(err.to_string().contains("must be called as a chained plugin"), "{err}");
}

#[test]
fn del_without_the_container_removes_the_entries() {
    let world = world("fwgone", "1.0.0");
    let pod = TestNs::new("fwgonep");
    let net = fw_list(&world, "1.0.0", "fwnet", "twfw6", "10.98.0.0/24", json!({}));
    let rt = world.rt("gone", &pod);
    world.add(&net, &rt);
    drop(pod);
    world.runtime.del(&net, &rt).unwrap();
    assert!(!table(&world).contains("fwnet/gone/eth0"));
}
