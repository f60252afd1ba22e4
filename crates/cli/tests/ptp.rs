//! twill's ptp plugin end to end, in namespaces: every spec version (up to 1.0.0 with the
//! reference host-local, 1.1.0 with twill's), routed pod-to-pod traffic (IPv4 and IPv6),
//! masquerading state, DEL without the container namespace, STATUS, GC of stale attachments
//! (also those the runtime forgot), undo on failure and the bad inputs.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use support::{World, addrs, ping};
use testkit::{TestNs, wait_until};

fn ptp_list(world: &World, version: &str, subnet: &str) -> cni_exec::LoadedList {
    world.list(json!({
        "cniVersion": version,
        "name": "ptpnet",
        "plugins": [{
            "type": "ptp", "ipMasq": true, "mtu": 1400,
            "ipam": {
                "type": "host-local", "subnet": subnet, "dataDir": "{dir}/ipam",
                "routes": [{"dst": "0.0.0.0/0"}]
            }
        }]
    }))
}

/// `ip -N route show` lines in `ns`, whitespace-normalised.
fn routes(ns: &TestNs, family: &str) -> Vec<String> {
    ns.exec_ok(&["ip", family, "route", "show"])
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// A route line that is `line`, or starts with it followed by more attributes.
fn has_route(ns: &TestNs, family: &str, line: &str) -> bool {
    routes(ns, family).iter().any(|r| r == line || r.starts_with(&format!("{line} ")))
}

/// Addresses on `dev` without the IPv6 link-local one the kernel adds itself.
fn global_addrs(ns: &TestNs, dev: &str) -> Vec<String> {
    addrs(ns, dev).into_iter().filter(|a| !a.starts_with("fe80:")).collect()
}

fn nft_has(world: &World, needle: &str) -> bool {
    world.host.exec_ok(&["nft", "list", "ruleset"]).contains(needle)
}

fn host_veths(world: &World) -> Vec<String> {
    world.host_links().into_iter().filter(|l| l.starts_with("veth")).collect()
}

fn no_host_veths(world: &World) -> bool {
    wait_until(Duration::from_secs(10), || host_veths(world).is_empty())
}

fn mtu(ns: &TestNs, dev: &str) -> u32 {
    ns.handle().link_get(dev).unwrap().unwrap_or_else(|| panic!("no {dev}")).mtu
}

/// A fake host with twill's ptp; the reference host-local stops at 1.0.0, twill's answers
/// 1.1.0.
fn world(tag: &str, version: &str) -> World {
    if version == "1.1.0" {
        World::new(tag, &["ptp", "host-local"], &[])
    } else {
        World::new(tag, &["ptp"], &["host-local"])
    }
}

fn lifecycle(version: &str, tag: &str) {
    let world = world(tag, version);
    let pod = TestNs::new(&format!("{tag}p"));
    let net = ptp_list(&world, version, "10.70.0.0/24");
    let rt = world.rt("pod1", &pod);
    let result = world.add(&net, &rt);
    assert_eq!(result.ips[0].address.to_string(), "10.70.0.2/24", "{version}");
    assert_eq!(result.ips[0].gateway.map(|g| g.to_string()).as_deref(), Some("10.70.0.1"), "{version}");

    // Container: the address with its prefix, no on-link subnet route, everything via the host.
    assert_eq!(global_addrs(&pod, "eth0"), vec!["10.70.0.2/24".to_string()], "{version}");
    let pod_routes = routes(&pod, "-4");
    assert!(
        has_route(&pod, "-4", "10.70.0.1 dev eth0 scope link src 10.70.0.2"),
        "{version}: {pod_routes:?}"
    );
    assert!(has_route(&pod, "-4", "10.70.0.0/24 via 10.70.0.1 dev eth0 src 10.70.0.2"), "{pod_routes:?}");
    assert!(has_route(&pod, "-4", "default via 10.70.0.1 dev eth0"), "{version}: {pod_routes:?}");
    assert!(!pod_routes.iter().any(|r| r.contains("proto kernel")), "{version}: {pod_routes:?}");
    assert_eq!(mtu(&pod, "eth0"), 1400);

    // Host: the gateway as /32 on the pod's veth and a route to the pod through it.
    let veths = host_veths(&world);
    assert_eq!(veths.len(), 1, "{version}: {veths:?}");
    let veth = &veths[0];
    if !cni_spec::Version::parse(version).unwrap().is_legacy_result() {
        assert_eq!(&result.interfaces[0].name, veth);
        assert_eq!(result.interfaces[1].name, "eth0");
        assert_eq!(result.ips[0].interface, Some(1));
    }
    assert_eq!(global_addrs(&world.host, veth), vec!["10.70.0.1/32".to_string()], "{version}");
    assert!(has_route(&world.host, "-4", &format!("10.70.0.2 dev {veth} scope link")), "{version}");
    assert_eq!(mtu(&world.host, veth), 1400);
    assert_eq!(world.host.exec_ok(&["sysctl", "-n", "net.ipv4.ip_forward"]).trim(), "1");
    assert!(ping(&pod, "10.70.0.1"), "{version}: pod reaches its gateway on the host");
    assert!(nft_has(&world, "10.70.0.2 comment \"ptpnet/pod1/eth0\""), "{version}: masquerade element");
    assert_eq!(world.reservations("ptpnet"), vec!["10.70.0.2"]);

    if cni_spec::Version::parse(version).unwrap().supports_check() {
        world.runtime.check(&net, &rt).unwrap_or_else(|e| panic!("{version} check: {e}"));
    }
    world.runtime.del(&net, &rt).unwrap_or_else(|e| panic!("{version} del: {e}"));
    assert!(pod.handle().link_get("eth0").unwrap().is_none(), "{version}: container veth gone");
    assert!(no_host_veths(&world), "{version}: host veth gone");
    assert!(!routes(&world.host, "-4").iter().any(|r| r.contains("10.70.0.2")), "{version}: host route gone");
    assert!(world.reservations("ptpnet").is_empty(), "{version}: IP released");
    assert!(!nft_has(&world, "ptpnet/pod1/eth0"), "{version}: nft elements removed");
    world.runtime.del(&net, &rt).unwrap_or_else(|e| panic!("{version} second del: {e}"));
    if version == "1.1.0" {
        assert!(world.runtime.status(&net).unwrap(), "STATUS is answered at 1.1.0");
        assert!(world.runtime.gc(&net, &[]).unwrap().gc_sent);
    }
}

#[test]
fn lifecycle_0_1_0() {
    lifecycle("0.1.0", "pt010");
}
#[test]
fn lifecycle_0_2_0() {
    lifecycle("0.2.0", "pt020");
}
#[test]
fn lifecycle_0_3_0() {
    lifecycle("0.3.0", "pt030");
}
#[test]
fn lifecycle_0_3_1() {
    lifecycle("0.3.1", "pt031");
}
#[test]
fn lifecycle_0_4_0() {
    lifecycle("0.4.0", "pt040");
}
#[test]
fn lifecycle_1_0_0() {
    lifecycle("1.0.0", "pt100");
}
#[test]
fn lifecycle_1_1_0() {
    lifecycle("1.1.0", "pt110");
}

#[test]
fn two_pods_reach_each_other_through_the_host() {
    let world = World::new("pttwo", &["ptp"], &["host-local"]);
    let (a, b) = (TestNs::new("pttwoa"), TestNs::new("pttwob"));
    let net = ptp_list(&world, "1.0.0", "10.71.0.0/24");
    let ra = world.add(&net, &world.rt("a", &a));
    let rb = world.add(&net, &world.rt("b", &b));
    let (ip_a, ip_b) = (ra.ips[0].address.addr().to_string(), rb.ips[0].address.addr().to_string());
    assert_ne!(ip_a, ip_b);
    assert!(ping(&a, &ip_b), "a reaches b");
    assert!(ping(&b, &ip_a), "b reaches a");
    // The second DEL must not disturb the first pod: the gateway /32 lives on each veth.
    world.runtime.del(&net, &world.rt("a", &a)).unwrap();
    assert!(ping(&b, "10.71.0.1"), "b still reaches its gateway");
    world.runtime.check(&net, &world.rt("b", &b)).unwrap();
    world.runtime.del(&net, &world.rt("b", &b)).unwrap();
    assert!(world.reservations("ptpnet").is_empty());
    assert!(no_host_veths(&world));
}

#[test]
fn dual_stack_pods_reach_each_other() {
    let world = World::new("ptdual", &["ptp"], &["host-local"]);
    let (a, b) = (TestNs::new("ptduala"), TestNs::new("ptdualb"));
    let net = world.list(json!({
        "cniVersion": "1.0.0",
        "name": "ptpnet",
        "plugins": [{
            "type": "ptp",
            "ipam": {
                "type": "host-local", "dataDir": "{dir}/ipam",
                "ranges": [[{"subnet": "10.72.0.0/24"}], [{"subnet": "fd00:72::/64"}]]
            }
        }]
    }));
    let ra = world.add(&net, &world.rt("a", &a));
    let rb = world.add(&net, &world.rt("b", &b));
    assert_eq!(ra.ips.len(), 2);
    assert!(addrs(&a, "eth0").contains(&"fd00:72::2/64".to_string()));
    assert!(has_route(&a, "-6", "fd00:72::1 dev eth0 src fd00:72::2"), "{:?}", routes(&a, "-6"));
    assert!(has_route(&a, "-6", "fd00:72::/64 via fd00:72::1 dev eth0 src fd00:72::2"));
    let veth = &ra.interfaces[0].name;
    assert!(addrs(&world.host, veth).contains(&"fd00:72::1/128".to_string()));
    for (from, to) in [(&a, &rb), (&b, &ra)] {
        for ip in &to.ips {
            assert!(ping(from, &ip.address.addr().to_string()), "reach {}", ip.address);
        }
    }
    world.runtime.check(&net, &world.rt("a", &a)).unwrap();
    world.runtime.del(&net, &world.rt("a", &a)).unwrap();
    world.runtime.del(&net, &world.rt("b", &b)).unwrap();
    assert!(world.reservations("ptpnet").is_empty());
}

#[test]
fn check_notices_a_missing_host_route() {
    let world = World::new("ptchk", &["ptp"], &["host-local"]);
    let pod = TestNs::new("ptchkp");
    let net = ptp_list(&world, "1.0.0", "10.73.0.0/24");
    let rt = world.rt("p", &pod);
    let result = world.add(&net, &rt);
    let veth = &result.interfaces[0].name;
    world.host.exec_ok(&["ip", "route", "del", "10.73.0.2/32", "dev", veth]);
    let err = world.runtime.check(&net, &rt).unwrap_err();
    assert!(err.to_string().contains("host lacks route 10.73.0.2/32"), "{err}");
    world.runtime.del(&net, &rt).unwrap();
}

/// A process that keeps a namespace alive after its bind mount is gone; killed on drop.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn del_without_the_container_netns_frees_everything() {
    let world = World::new("ptgone", &["ptp"], &["host-local"]);
    let net = ptp_list(&world, "1.0.0", "10.74.0.0/24");

    // The namespace is deleted: its veth goes with it, DEL frees the rest.
    let pod = TestNs::new("ptgonep");
    let rt = world.rt("gone", &pod);
    world.add(&net, &rt);
    drop(pod);
    world.runtime.del(&net, &rt).unwrap();
    assert!(world.reservations("ptpnet").is_empty());
    assert!(!nft_has(&world, "ptpnet/gone/eth0"));
    assert!(no_host_veths(&world));

    // The namespace outlives its bind mount (a process still runs in it): DEL finds the host
    // veth through the route to the pod address of prevResult and removes it.
    let pod = TestNs::new("ptheldp");
    let rt = world.rt("held", &pod);
    world.add(&net, &rt);
    let holder = Holder(
        Command::new("ip")
            .args(["netns", "exec", pod.name(), "sleep", "30"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let inside = format!("/proc/{}/ns/net", holder.0.id());
    let want = pod.ns().identity().unwrap();
    assert!(wait_until(Duration::from_secs(10), || netns::NetNs::open(&inside)
        .is_ok_and(|ns| ns.identity().is_ok_and(|id| id == want))));
    drop(pod);
    assert_eq!(host_veths(&world).len(), 1, "the held namespace keeps its veth");
    world.runtime.del(&net, &rt).unwrap();
    assert!(no_host_veths(&world), "{:?}", host_veths(&world));
    assert!(world.reservations("ptpnet").is_empty());
}

#[test]
fn gc_removes_stale_attachments() {
    let world = World::new("ptgc", &["ptp"], &["host-local"]);
    let (a, b) = (TestNs::new("ptgca"), TestNs::new("ptgcb"));
    let net = ptp_list(&world, "1.0.0", "10.75.0.0/24");
    world.add(&net, &world.rt("keep", &a));
    world.add(&net, &world.rt("stale", &b));
    let keep = cni_spec::Attachment { container_id: "keep".into(), ifname: "eth0".into() };
    let report = world.runtime.gc(&net, &[keep]).unwrap();
    assert_eq!(report.deleted.len(), 1);
    assert_eq!(world.reservations("ptpnet"), vec!["10.75.0.2"]);
    assert!(nft_has(&world, "ptpnet/keep/eth0") && !nft_has(&world, "ptpnet/stale/eth0"));
    assert!(b.handle().link_get("eth0").unwrap().is_none());
    world.runtime.del(&net, &world.rt("keep", &a)).unwrap();
}

/// A crash-style GC at 1.1.0: the runtime lost its result cache, so no DEL is synthesised;
/// the plugins' GC alone frees the stale attachment's IP (host-local) and its masquerade
/// elements (ptp), and keeps the valid one's.
#[test]
fn gc_1_1_0_frees_what_the_runtime_forgot() {
    let world = world("ptgc11", "1.1.0");
    let (a, b) = (TestNs::new("ptgc11a"), TestNs::new("ptgc11b"));
    let net = ptp_list(&world, "1.1.0", "10.80.0.0/24");
    assert!(world.runtime.status(&net).unwrap(), "STATUS before any ADD");
    world.add(&net, &world.rt("keep", &a));
    world.add(&net, &world.rt("stale", &b));
    assert_eq!(world.reservations("ptpnet"), vec!["10.80.0.2", "10.80.0.3"]);
    std::fs::remove_dir_all(world.dir.join("cache")).unwrap();
    let keep = cni_spec::Attachment { container_id: "keep".into(), ifname: "eth0".into() };
    let report = world.runtime.gc(&net, &[keep]).unwrap();
    assert!(report.deleted.is_empty() && report.gc_sent, "{report:?}");
    assert_eq!(world.reservations("ptpnet"), vec!["10.80.0.2"], "the stale IP is free");
    assert!(nft_has(&world, "ptpnet/keep/eth0"), "the valid attachment keeps its masquerading");
    assert!(!nft_has(&world, "ptpnet/stale/eth0"), "the stale attachment's elements are gone");
    assert!(ping(&a, "10.80.0.1"), "the valid pod still reaches its gateway");
    // GC cannot know the stale pod's veth (no netns is named to it); its DEL still can.
    world.runtime.del(&net, &world.rt("stale", &b)).unwrap();
    world.runtime.del(&net, &world.rt("keep", &a)).unwrap();
    assert!(world.reservations("ptpnet").is_empty());
    assert!(no_host_veths(&world));
}

#[test]
fn taken_ifname_fails_cleanly() {
    let world = World::new("pttaken", &["ptp"], &["host-local"]);
    let pod = TestNs::new("pttakenp");
    pod.exec_ok(&["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "other0"]);
    let net = ptp_list(&world, "1.0.0", "10.76.0.0/24");
    let err = world.runtime.add(&net, &world.rt("p", &pod)).unwrap_err();
    assert_eq!(err.to_cni().code.code(), 4, "{err}");
    assert!(err.to_string().contains("eth0 already exists"), "{err}");
    assert!(world.reservations("ptpnet").is_empty());
    assert!(host_veths(&world).is_empty());
    assert!(!nft_has(&world, "ptpnet/p/eth0"));
}

#[test]
fn failure_after_the_veth_undoes_everything() {
    let world = World::new("ptundo", &["ptp"], &["host-local"]);
    let pod = TestNs::new("ptundop");
    // Someone else already routes the address the pod will get.
    world.host.exec_ok(&["ip", "link", "add", "blk0", "type", "veth", "peer", "name", "blk1"]);
    world.host.exec_ok(&["ip", "link", "set", "blk0", "up"]);
    world.host.exec_ok(&["ip", "route", "add", "10.77.0.2/32", "dev", "blk0"]);
    let net = ptp_list(&world, "1.0.0", "10.77.0.0/24");
    let err = world.runtime.add(&net, &world.rt("p", &pod)).unwrap_err();
    assert!(err.to_string().contains("10.77.0.2/32"), "{err}");
    assert!(pod.handle().link_get("eth0").unwrap().is_none());
    assert!(no_host_veths(&world));
    assert!(world.reservations("ptpnet").is_empty());
    assert!(!nft_has(&world, "ptpnet/p/eth0"));
}

#[test]
fn bad_configs_are_code_7_and_leave_nothing() {
    let world = World::new("ptbad", &["ptp"], &["host-local"]);
    let pod = TestNs::new("ptbadp");
    for plugin in [
        json!({"type": "ptp"}),
        json!({"type": "ptp", "ipMasq": true, "ipMasqBackend": "pf", "ipam": {"type": "host-local", "subnet": "10.78.0.0/24", "dataDir": "{dir}/ipam"}}),
        json!({"type": "ptp", "mtu": -1, "ipam": {"type": "host-local", "subnet": "10.78.0.0/24", "dataDir": "{dir}/ipam"}}),
    ] {
        let net = world.list(json!({"cniVersion": "1.0.0", "name": "ptpnet", "plugins": [plugin]}));
        let err = world.runtime.add(&net, &world.rt("p", &pod)).unwrap_err();
        assert_eq!(err.to_cni().code.code(), 7, "{plugin}: {err}");
        assert!(pod.handle().link_get("eth0").unwrap().is_none());
        assert!(host_veths(&world).is_empty());
        assert!(world.reservations("ptpnet").is_empty());
    }
}

#[test]
fn missing_netns_is_code_3_and_leaves_nothing() {
    let world = World::new("ptnons", &["ptp"], &["host-local"]);
    let net = ptp_list(&world, "1.0.0", "10.79.0.0/24");
    let mut rt = world.rt("gone", &world.host);
    rt.netns = "/run/netns/twt-does-not-exist".into();
    let err = world.runtime.add(&net, &rt).unwrap_err();
    assert_eq!(err.to_cni().code.code(), 3, "{err}");
    assert!(world.reservations("ptpnet").is_empty());
    world.runtime.del(&net, &rt).unwrap();
}
