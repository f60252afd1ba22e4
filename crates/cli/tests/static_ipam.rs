//! twill's static IPAM end to end under twill's bridge (in-process) and the reference bridge
//! (executed), every spec version: ADD → CHECK → DEL → DEL → GC, runtime-requested addresses.

mod support;

use cni_exec::LoadedList;
use cni_spec::Version;
use serde_json::json;
use support::{VERSIONS, World, addrs};
use testkit::TestNs;

/// The route names its gateway: the reference bridge's CHECK looks for a gateway-less route
/// literally, while its ADD installs it via the address's gateway.
fn static_list(world: &World, version: &str) -> LoadedList {
    world.list(json!({
        "cniVersion": version,
        "name": "stnet",
        "plugins": [{"type": "bridge", "bridge": "twst0", "isGateway": true, "capabilities": {"ips": true},
                     "ipam": {"type": "static",
                              "addresses": [{"address": "10.80.0.7/24", "gateway": "10.80.0.1"}],
                              "routes": [{"dst": "10.81.0.0/16", "gw": "10.80.0.1"}]}}]
    }))
}

fn lifecycle(world: &World, version: &str, tag: &str) {
    let net = static_list(world, version);
    let pod = TestNs::new(&format!("{tag}p"));
    let rt = world.rt("pod1", &pod);
    let result = world.add(&net, &rt);
    assert_eq!(result.ips[0].address.to_string(), "10.80.0.7/24", "{version}");
    assert_eq!(result.routes[0].dst.to_string(), "10.81.0.0/16", "{version}");
    assert!(addrs(&pod, "eth0").contains(&"10.80.0.7/24".to_string()), "{version}");
    let v = Version::parse(version).unwrap();
    if v.supports_check() {
        world.runtime.check(&net, &rt).unwrap_or_else(|e| panic!("{version} check: {e}"));
    }
    world.runtime.del(&net, &rt).unwrap_or_else(|e| panic!("{version} del: {e}"));
    assert!(addrs(&pod, "eth0").is_empty(), "{version}");
    world.runtime.del(&net, &rt).unwrap_or_else(|e| panic!("{version} second del: {e}"));
    let report = world.runtime.gc(&net, &[]).unwrap_or_else(|e| panic!("{version} gc: {e}"));
    assert_eq!(report.gc_sent, v.supports_gc());
    if v.supports_gc() {
        assert!(world.runtime.status(&net).unwrap());
    }
}

#[test]
fn under_twill_bridge_in_every_version() {
    for version in VERSIONS {
        let tag = format!("st{}", version.replace('.', ""));
        let world = World::new(&tag, &["bridge", "static"], &[]);
        lifecycle(&world, version, &tag);
    }
}

#[test]
fn under_the_reference_bridge_in_every_version_it_speaks() {
    for version in VERSIONS.iter().filter(|v| **v != "1.1.0") {
        let tag = format!("strb{}", version.replace('.', ""));
        let world = World::new(&tag, &["static"], &["bridge"]);
        lifecycle(&world, version, &tag);
    }
}

#[test]
fn runtime_ips_replace_the_configured_addresses() {
    let world = World::new("stips", &["bridge", "static"], &[]);
    let net = static_list(&world, "1.0.0");
    let pod = TestNs::new("stipsp");
    let mut rt = world.rt("pod1", &pod);
    rt.capability_args.insert("ips".into(), json!(["10.80.0.9/24"]));
    let result = world.add(&net, &rt);
    let got: Vec<String> = result.ips.iter().map(|ip| ip.address.to_string()).collect();
    assert_eq!(got, ["10.80.0.9/24"]);
    assert!(addrs(&pod, "eth0").contains(&"10.80.0.9/24".to_string()));
    world.runtime.check(&net, &rt).unwrap();
    world.runtime.del(&net, &rt).unwrap();
}
