//! twill's macvlan plugin end to end, in namespaces. The master is one end of a veth pair in
//! the fake host whose other end sits in a "wire" namespace (this kernel has no dummy links);
//! the wire end holds an address, so pods prove they really talk across the master.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{World, addrs, ping};
use testkit::{TestNs, wait_until};

/// A veth `name` in the fake host, up, whose peer `wire0` (up, 10.80.0.254/24 when `addr`)
/// is in `wire`.
fn master(world: &World, wire: &TestNs, name: &str, addr: Option<&str>) {
    world.host.exec_ok(&[
        "ip",
        "link",
        "add",
        name,
        "type",
        "veth",
        "peer",
        "name",
        "wire0",
        "netns",
        wire.name(),
    ]);
    world.host.exec_ok(&["ip", "link", "set", name, "up"]);
    wire.exec_ok(&["ip", "link", "set", "wire0", "up"]);
    if let Some(a) = addr {
        wire.exec_ok(&["ip", "addr", "add", a, "dev", "wire0"]);
    }
}

fn macvlan_list(world: &World, version: &str, plugin: Value) -> cni_exec::LoadedList {
    world.list(json!({"cniVersion": version, "name": "mvnet", "plugins": [plugin]}))
}

fn ipam(subnet: &str) -> Value {
    json!({"type": "host-local", "subnet": subnet, "dataDir": "{dir}/ipam"})
}

/// `ip -d -j link show DEV` in `ns`, or `None` when there is no such link.
fn link_details(ns: &TestNs, dev: &str) -> Option<Value> {
    ns.handle().link_get(dev).unwrap()?;
    Some(ns.exec_json(&["ip", "-d", "-j", "link", "show", "dev", dev])[0].clone())
}

/// A fake host with twill's macvlan; the reference host-local stops at 1.0.0, twill's
/// answers 1.1.0.
fn world(tag: &str, version: &str) -> World {
    if version == "1.1.0" {
        World::new(tag, &["macvlan", "host-local"], &[])
    } else {
        World::new(tag, &["macvlan"], &["host-local"])
    }
}

fn lifecycle(version: &str, tag: &str) {
    let world = world(tag, version);
    let (pod, wire) = (TestNs::new(&format!("{tag}p")), TestNs::new(&format!("{tag}w")));
    // The master is called like the pod's interface: the macvlan is born in the pod's
    // namespace, so the names never meet.
    master(&world, &wire, "eth0", Some("10.80.0.254/24"));
    let net = macvlan_list(
        &world,
        version,
        json!({"type": "macvlan", "master": "eth0", "ipam": ipam("10.80.0.0/24")}),
    );
    let rt = world.rt("pod1", &pod);
    let result = world.add(&net, &rt);
    assert_eq!(result.ips[0].address.to_string(), "10.80.0.2/24", "{version}");

    let link = link_details(&pod, "eth0").expect("eth0 in the pod");
    assert_eq!(link["linkinfo"]["info_kind"], "macvlan", "{version}");
    assert_eq!(link["linkinfo"]["info_data"]["mode"], "bridge", "{version}");
    assert!(addrs(&pod, "eth0").contains(&"10.80.0.2/24".to_string()), "{version}");
    assert!(ping(&pod, "10.80.0.254"), "{version}: pod reaches the wire through the master");
    assert_eq!(world.reservations("mvnet"), vec!["10.80.0.2"]);
    if !cni_spec::Version::parse(version).unwrap().is_legacy_result() {
        assert_eq!(result.interfaces.len(), 1);
        assert_eq!(result.interfaces[0].sandbox.as_deref(), Some(rt.netns.as_str()));
        let mac = link["address"].as_str().unwrap();
        assert_eq!(result.interfaces[0].mac.as_deref(), Some(mac));
        assert_eq!(result.ips[0].interface, Some(0));
    }

    if cni_spec::Version::parse(version).unwrap().supports_check() {
        world.runtime.check(&net, &rt).unwrap_or_else(|e| panic!("{version} check: {e}"));
    }
    world.runtime.del(&net, &rt).unwrap_or_else(|e| panic!("{version} del: {e}"));
    assert!(link_details(&pod, "eth0").is_none(), "{version}: macvlan gone");
    assert!(world.reservations("mvnet").is_empty(), "{version}: IP released");
    assert!(world.host_links().contains(&"eth0".to_string()), "{version}: the master stays");
    world.runtime.del(&net, &rt).unwrap_or_else(|e| panic!("{version} second del: {e}"));
    if version == "1.1.0" {
        assert!(world.runtime.status(&net).unwrap(), "STATUS is answered at 1.1.0");
        assert!(world.runtime.gc(&net, &[]).unwrap().gc_sent);
    }
}

#[test]
fn lifecycle_0_1_0() {
    lifecycle("0.1.0", "mv010");
}
#[test]
fn lifecycle_0_2_0() {
    lifecycle("0.2.0", "mv020");
}
#[test]
fn lifecycle_0_3_0() {
    lifecycle("0.3.0", "mv030");
}
#[test]
fn lifecycle_0_3_1() {
    lifecycle("0.3.1", "mv031");
}
#[test]
fn lifecycle_0_4_0() {
    lifecycle("0.4.0", "mv040");
}
#[test]
fn lifecycle_1_0_0() {
    lifecycle("1.0.0", "mv100");
}
#[test]
fn lifecycle_1_1_0() {
    lifecycle("1.1.0", "mv110");
}

/// GC at 1.1.0 through the runtime, with IPAM: a stale attachment the runtime still knows is
/// DELed (its macvlan and IP go); one it forgot (cache lost) has its IP freed by the plugins'
/// GC. The valid attachment keeps both.
#[test]
fn ipam_1_1_0_status_and_gc_free_stale_ips() {
    let world = world("mvgc", "1.1.0");
    let (keep, known, lost, wire) =
        (TestNs::new("mvgck"), TestNs::new("mvgcn"), TestNs::new("mvgcl"), TestNs::new("mvgcw"));
    master(&world, &wire, "up0", Some("10.85.0.254/24"));
    let net = macvlan_list(
        &world,
        "1.1.0",
        json!({"type": "macvlan", "master": "up0", "ipam": ipam("10.85.0.0/24")}),
    );
    assert!(world.runtime.status(&net).unwrap(), "STATUS: master and IPAM are there");
    world.add(&net, &world.rt("lost", &lost));
    std::fs::remove_dir_all(world.dir.join("cache")).unwrap();
    world.add(&net, &world.rt("keep", &keep));
    world.add(&net, &world.rt("known", &known));
    assert_eq!(world.reservations("mvnet"), vec!["10.85.0.2", "10.85.0.3", "10.85.0.4"]);
    let valid = cni_spec::Attachment { container_id: "keep".into(), ifname: "eth0".into() };
    let report = world.runtime.gc(&net, &[valid]).unwrap();
    assert!(report.gc_sent);
    assert_eq!(report.deleted.iter().map(|a| a.container_id.as_str()).collect::<Vec<_>>(), vec!["known"]);
    assert_eq!(world.reservations("mvnet"), vec!["10.85.0.3"], "only the valid attachment's IP stays");
    assert!(link_details(&known, "eth0").is_none(), "the synthesised DEL removed the macvlan");
    assert!(ping(&keep, "10.85.0.254"), "the valid pod still talks across the master");
    world.runtime.check(&net, &world.rt("keep", &keep)).unwrap();
    world.runtime.del(&net, &world.rt("keep", &keep)).unwrap();
    world.runtime.del(&net, &world.rt("lost", &lost)).unwrap();
    assert!(world.reservations("mvnet").is_empty());
}

#[test]
fn two_pods_on_one_master_reach_each_other_in_bridge_mode() {
    let world = World::new("mvtwo", &["macvlan"], &["host-local"]);
    let (a, b, wire) = (TestNs::new("mvtwoa"), TestNs::new("mvtwob"), TestNs::new("mvtwow"));
    master(&world, &wire, "up0", None);
    let net = macvlan_list(
        &world,
        "1.0.0",
        json!({"type": "macvlan", "master": "up0", "mode": "bridge", "ipam": ipam("10.81.0.0/24")}),
    );
    let ra = world.add(&net, &world.rt("a", &a));
    let rb = world.add(&net, &world.rt("b", &b));
    assert_ne!(ra.interfaces[0].mac, rb.interfaces[0].mac);
    assert!(ping(&a, &rb.ips[0].address.addr().to_string()), "a reaches b");
    assert!(ping(&b, &ra.ips[0].address.addr().to_string()), "b reaches a");
    world.runtime.del(&net, &world.rt("a", &a)).unwrap();
    world.runtime.del(&net, &world.rt("b", &b)).unwrap();
    assert!(world.reservations("mvnet").is_empty());
}

#[test]
fn layer_2_only_with_1_1_0_add_check_gc() {
    let world = World::new("mvl2", &["macvlan"], &[]);
    let (pod, wire) = (TestNs::new("mvl2p"), TestNs::new("mvl2w"));
    master(&world, &wire, "up0", None);
    let net = macvlan_list(&world, "1.1.0", json!({"type": "macvlan", "master": "up0", "mode": "private"}));
    let rt = world.rt("l2", &pod);
    let result = world.add(&net, &rt);
    assert!(result.ips.is_empty());
    let link = link_details(&pod, "eth0").unwrap();
    assert!(link["flags"].as_array().unwrap().contains(&json!("UP")), "{link}");
    assert_eq!(link["linkinfo"]["info_data"]["mode"], "private");
    assert!(world.runtime.status(&net).unwrap(), "STATUS is answered at 1.1.0");
    world.runtime.check(&net, &rt).unwrap();
    let report = world.runtime.gc(&net, &[]).unwrap();
    assert!(report.gc_sent);
    assert_eq!(report.deleted.len(), 1);
    assert!(link_details(&pod, "eth0").is_none(), "GC removed the stale attachment");

    let gone = macvlan_list(&world, "1.1.0", json!({"type": "macvlan", "master": "nope0"}));
    let err = world.runtime.status(&gone).unwrap_err();
    assert_eq!(err.to_cni().code.code(), 50, "{err}");
    assert!(err.to_string().contains("nope0"), "{err}");
}

#[test]
fn options_mtu_mac_bcqueuelen_and_cni_args_mac() {
    let world = World::new("mvopt", &["macvlan"], &["host-local"]);
    let (pod, wire) = (TestNs::new("mvoptp"), TestNs::new("mvoptw"));
    master(&world, &wire, "up0", None);
    let net = macvlan_list(
        &world,
        "1.0.0",
        json!({"type": "macvlan", "master": "up0", "mode": "vepa", "mtu": 1400,
               "mac": "02:00:00:00:aa:01", "bcqueuelen": 2000, "ipam": ipam("10.82.0.0/24")}),
    );
    let rt = world.rt("opt", &pod);
    let result = world.add(&net, &rt);
    assert_eq!(result.interfaces[0].mac.as_deref(), Some("02:00:00:00:aa:01"));
    let link = link_details(&pod, "eth0").unwrap();
    assert_eq!(link["mtu"], 1400);
    assert_eq!(link["address"], "02:00:00:00:aa:01");
    assert_eq!(link["linkinfo"]["info_data"]["mode"], "vepa");
    let index = pod.handle().link_get("eth0").unwrap().unwrap().index;
    assert_eq!(pod.handle().macvlan_get(index).unwrap().unwrap().bc_queue_len, Some(2000));
    world.runtime.check(&net, &rt).unwrap();
    world.runtime.del(&net, &rt).unwrap();

    // CNI_ARGS MAC= overrides the config's mac.
    let mut rt = world.rt("args", &pod);
    // IgnoreUnknown, as runtimes send it: the reference host-local refuses keys it does not know.
    rt.args = vec![("IgnoreUnknown".into(), "1".into()), ("MAC".into(), "02:00:00:00:aa:02".into())];
    world.add(&net, &rt);
    assert_eq!(link_details(&pod, "eth0").unwrap()["address"], "02:00:00:00:aa:02");
    world.runtime.del(&net, &rt).unwrap();
}

#[test]
fn default_master_is_the_default_route_interface() {
    let world = World::new("mvdef", &["macvlan"], &["host-local"]);
    let (pod, wire) = (TestNs::new("mvdefp"), TestNs::new("mvdefw"));
    master(&world, &wire, "uplink0", Some("10.83.0.254/24"));
    world.host.exec_ok(&["ip", "route", "add", "default", "dev", "uplink0"]);
    let net = macvlan_list(&world, "1.0.0", json!({"type": "macvlan", "ipam": ipam("10.83.0.0/24")}));
    let rt = world.rt("def", &pod);
    world.add(&net, &rt);
    let uplink = world.host.handle().link_get("uplink0").unwrap().unwrap();
    assert_eq!(pod.handle().link_get("eth0").unwrap().unwrap().link, Some(uplink.index));
    assert!(ping(&pod, "10.83.0.254"));
    world.runtime.check(&net, &rt).unwrap();
    world.runtime.del(&net, &rt).unwrap();
}

#[test]
fn link_in_container_uses_a_master_inside_the_pod() {
    let world = World::new("mvin", &["macvlan"], &[]);
    let pod = TestNs::new("mvinp");
    pod.exec_ok(&["ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1"]);
    pod.exec_ok(&["ip", "link", "set", "up0", "up"]);
    let net =
        macvlan_list(&world, "1.0.0", json!({"type": "macvlan", "master": "up0", "linkInContainer": true}));
    let rt = world.rt("in", &pod);
    world.add(&net, &rt);
    let h = pod.handle();
    let (up0, mv) = (h.link_get("up0").unwrap().unwrap(), h.link_get("eth0").unwrap().unwrap());
    assert_eq!((mv.link, mv.link_netnsid), (Some(up0.index), None));
    world.runtime.check(&net, &rt).unwrap();
    world.runtime.del(&net, &rt).unwrap();
    assert!(h.link_get("eth0").unwrap().is_none());
    assert!(h.link_get("up0").unwrap().is_some());
}

#[test]
fn check_notices_a_changed_mode() {
    let world = World::new("mvchk", &["macvlan"], &[]);
    let (pod, wire) = (TestNs::new("mvchkp"), TestNs::new("mvchkw"));
    master(&world, &wire, "up0", None);
    let net = macvlan_list(&world, "1.0.0", json!({"type": "macvlan", "master": "up0"}));
    let rt = world.rt("c", &pod);
    world.add(&net, &rt);
    let private =
        macvlan_list(&world, "1.0.0", json!({"type": "macvlan", "master": "up0", "mode": "private"}));
    let err = world.runtime.check(&private, &rt).unwrap_err();
    assert!(err.to_string().contains("is in mode bridge, the config says private"), "{err}");
    world.runtime.del(&net, &rt).unwrap();
}

/// ADD with `plugin` fails with `code` (and a message containing `needle`), leaving no
/// interface in the pod and no reservation.
fn fails_cleanly(world: &World, pod: &TestNs, plugin: Value, code: u32, needle: &str) {
    let had_eth0 = pod.handle().link_get("eth0").unwrap().map(|l| l.index);
    let net = macvlan_list(world, "1.0.0", plugin.clone());
    let err = world.runtime.add(&net, &world.rt("bad", pod)).unwrap_err();
    assert_eq!(err.to_cni().code.code(), code, "{plugin}: {err}");
    assert!(err.to_string().contains(needle), "{plugin}: {err}");
    assert_eq!(pod.handle().link_get("eth0").unwrap().map(|l| l.index), had_eth0, "{plugin}");
    assert!(world.reservations("mvnet").is_empty(), "{plugin}");
    assert!(wait_until(Duration::from_secs(10), || pod
        .handle()
        .link_list()
        .unwrap()
        .iter()
        .all(|l| l.kind.as_deref() != Some("macvlan"))));
}

#[test]
fn bad_inputs_give_their_codes_and_leave_nothing() {
    let world = World::new("mvbad", &["macvlan"], &["host-local"]);
    let (pod, wire) = (TestNs::new("mvbadp"), TestNs::new("mvbadw"));
    master(&world, &wire, "up0", None);
    let with = |extra: Value| {
        let mut p = json!({"type": "macvlan", "master": "up0", "ipam": ipam("10.84.0.0/24")});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    };
    fails_cleanly(&world, &pod, with(json!({"master": "nope0"})), 7, "master interface nope0 does not exist");
    fails_cleanly(&world, &pod, with(json!({"mode": "bridged"})), 7, "unknown macvlan mode \"bridged\"");
    fails_cleanly(&world, &pod, with(json!({"mode": "source"})), 7, "unknown macvlan mode");
    fails_cleanly(&world, &pod, with(json!({"mtu": 9000})), 7, "must not exceed the MTU 1500 of master up0");
    fails_cleanly(&world, &pod, with(json!({"mac": "01:00:5e:00:00:01"})), 7, "not a unicast address");
    // No master and no default route to take one from.
    fails_cleanly(&world, &pod, with(json!({"master": ""})), 7, "no default route");
    // IPAM fails after the macvlan exists: the macvlan is removed again.
    fails_cleanly(
        &world,
        &pod,
        with(json!({"ipam": {"type": "host-local", "dataDir": "{dir}/ipam"}})),
        999,
        "no IP ranges specified",
    );
    // The interface name is taken in the pod.
    pod.exec_ok(&["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "other0"]);
    fails_cleanly(&world, &pod, with(json!({})), 4, "eth0 already exists");
    assert_eq!(pod.handle().link_get("eth0").unwrap().unwrap().kind.as_deref(), Some("veth"));
}
