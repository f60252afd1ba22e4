//! twill's host-local executed by the reference bridge (the reverse chain, the reference
//! host-local under twill's bridge, is tests/bridge.rs), a switch between the reference
//! binary and twill's with reservations in place, 50 pods at once, and the node-reboot
//! case that only host-local's GC cleans up.

use std::collections::HashSet;
use std::path::Path;

use cni_exec::RuntimeConf;
use serde_json::json;
use testkit::TestNs;

use super::support::{REFERENCE_DIR, VERSIONS, World};
use super::{NET, bridge_list, data_dir, files, ipam, lifecycle, veths_settle};

#[test]
fn under_the_reference_bridge_in_every_version_it_speaks() {
    // The reference bridge stops at 1.0.0.
    for version in VERSIONS.iter().filter(|v| **v != "1.1.0") {
        let tag = format!("hlrb{}", version.replace('.', ""));
        let world = World::new(&tag, &["host-local"], &["bridge"]);
        let net = bridge_list(&world, version, "twhl6", ipam("10.70.0.0/24"));
        lifecycle(&world, &net, version, &tag);
    }
}

/// Both binaries share the lock and the file format: each frees what the other reserved,
/// and round-robin continues from the other's `last_reserved_ip.0`.
#[test]
fn reservations_survive_a_switch_of_binary() {
    let world = World::new("hlsw", &["host-local"], &[]);
    let reference_bin = Path::new(REFERENCE_DIR).join("host-local");
    std::os::unix::fs::symlink(reference_bin, world.dir.join("bin/ref-host-local")).unwrap();
    let list = |plugin: &str| {
        world.list(json!({"cniVersion": "1.0.0", "name": NET,
                          "plugins": [{"type": plugin, "ipam": ipam("10.77.0.0/24")}]}))
    };
    let (reference, twill) = (list("ref-host-local"), list("host-local"));
    let pod = TestNs::new("hlswp");
    let (a, b) = (world.rt("a", &pod), world.rt("b", &pod));
    assert_eq!(world.add(&reference, &a).ips[0].address.to_string(), "10.77.0.2/24");
    assert_eq!(world.add(&twill, &b).ips[0].address.to_string(), "10.77.0.3/24");
    let both = files(&[
        ("10.77.0.2", "a\r\neth0"),
        ("10.77.0.3", "b\r\neth0"),
        ("last_reserved_ip.0", "10.77.0.3"),
        ("lock", ""),
    ]);
    assert_eq!(data_dir(&world), both);
    world.runtime.check(&twill, &a).unwrap();
    world.runtime.check(&reference, &b).unwrap();
    world.runtime.del(&twill, &a).unwrap();
    world.runtime.del(&reference, &b).unwrap();
    assert_eq!(data_dir(&world), files(&[("last_reserved_ip.0", "10.77.0.3"), ("lock", "")]));
}

/// Runs `op` for every attachment on its own thread, all at once.
fn all_at_once<T: Send>(rts: &[RuntimeConf], op: impl Fn(&RuntimeConf) -> T + Sync) -> Vec<T> {
    std::thread::scope(|s| {
        let op = &op;
        let handles: Vec<_> = rts.iter().map(|rt| s.spawn(move || op(rt))).collect();
        handles.into_iter().map(|h| h.join().expect("thread panicked")).collect()
    })
}

#[test]
fn fifty_parallel_adds_then_fifty_parallel_dels() {
    const PODS: usize = 50;
    let world = World::new("hlpar", &["bridge", "host-local"], &[]);
    let net = bridge_list(&world, "1.0.0", "twhl7", ipam("10.78.0.0/24"));
    let pods: Vec<TestNs> = (0..PODS).map(|i| TestNs::new(&format!("hlpar{i}"))).collect();
    let rts: Vec<RuntimeConf> =
        pods.iter().enumerate().map(|(i, p)| world.rt(&format!("pod{i}"), p)).collect();

    let added = all_at_once(&rts, |rt| world.runtime.add(&net, rt));
    let held = data_dir(&world);
    let mut seen = HashSet::new();
    for (rt, result) in rts.iter().zip(added) {
        let result = result.unwrap_or_else(|e| panic!("add {}: {e}", rt.container_id));
        let ip = result.ips[0].address.addr().to_string();
        assert!(seen.insert(ip.clone()), "{ip} handed out twice");
        assert_eq!(held[&ip], format!("{}\r\neth0", rt.container_id));
    }
    assert_eq!(world.reservations(NET).len(), PODS);

    for (rt, deleted) in rts.iter().zip(all_at_once(&rts, |rt| world.runtime.del(&net, rt))) {
        deleted.unwrap_or_else(|e| panic!("del {}: {e}", rt.container_id));
    }
    assert!(world.reservations(NET).is_empty(), "range empty: {:?}", world.reservations(NET));
    assert!(veths_settle(&world, 0));
}

/// A node reboots: the containers' namespaces are gone without a DEL, and so is the
/// runtime's result cache (kept on tmpfs, or lost with the runtime's state), so the runtime
/// has nothing to DEL. Only host-local's GC can free the addresses; the reference leaks
/// them until someone deletes the files by hand.
#[test]
fn node_reboot_gc_frees_every_leaked_address() {
    let world = World::new("hlboot", &["bridge", "host-local"], &[]);
    let net = bridge_list(&world, "1.1.0", "twhl8", ipam("10.79.0.0/24"));
    let pods: Vec<TestNs> = (0..5).map(|i| TestNs::new(&format!("hlboot{i}"))).collect();
    for (i, pod) in pods.iter().enumerate() {
        world.add(&net, &world.rt(&format!("pod{i}"), pod));
    }
    assert_eq!(world.reservations(NET).len(), 5);
    drop(pods);
    std::fs::remove_dir_all(world.dir.join("cache")).unwrap();
    assert!(veths_settle(&world, 0), "veths went with the namespaces");

    let report = world.runtime.gc(&net, &[]).unwrap();
    assert!(report.deleted.is_empty(), "the runtime had nothing to DEL: {report:?}");
    assert!(report.gc_sent);
    assert_eq!(data_dir(&world), files(&[("last_reserved_ip.0", "10.79.0.6"), ("lock", "")]));
}
