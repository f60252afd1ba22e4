//! The runtime drives the reference Go plugins (Debian containernetworking-plugins, in
//! /usr/lib/cni) through real namespaces: a fake host netns where the plugins run, a container
//! netns they attach. bridge + host-local + portmap, for 0.3.1, 0.4.0 and 1.0.0.

use std::path::{Path, PathBuf};

use cni_exec::{LoadedList, RawExec, Runtime, RuntimeConf};
use cni_spec::{Attachment, NetConfList};
use netns::NetNs;
use serde_json::json;
use testkit::{NsPair, require_privileges};

const REFERENCE_DIR: &str = "/usr/lib/cni";

fn require_reference_plugins() {
    for p in ["bridge", "host-local", "portmap"] {
        let path = Path::new(REFERENCE_DIR).join(p);
        assert!(
            path.is_file(),
            "reference plugin {} missing: install Debian package containernetworking-plugins (scripts/install-deps.sh)",
            path.display()
        );
    }
}

struct Fixture {
    pair: NsPair,
    dir: PathBuf,
    runtime: Runtime,
    net: LoadedList,
}

impl Fixture {
    fn new(tag: &str, version: &str) -> Fixture {
        require_privileges();
        require_reference_plugins();
        let pair = NsPair::new(tag);
        let dir = std::env::temp_dir().join(format!("twill-ref-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let list = json!({
            "cniVersion": version,
            "name": "refnet",
            "plugins": [
                {"type": "bridge", "bridge": "twbr0", "isGateway": true, "ipMasq": true,
                 // Dual-stack: the reference portmap's CHECK (1.1.1) looks for its IPv6 chain
                 // even when the pod has no IPv6 address, and fails on a v4-only pod.
                 "ipam": {"type": "host-local", "dataDir": dir.join("ipam"),
                          "ranges": [[{"subnet": "10.77.0.0/24"}], [{"subnet": "fd77::/64"}]],
                          "routes": [{"dst": "0.0.0.0/0"}]}},
                {"type": "portmap", "capabilities": {"portMappings": true}}
            ]
        });
        let bytes = serde_json::to_vec(&list).unwrap();
        let net = LoadedList {
            list: NetConfList::parse(&bytes).unwrap(),
            bytes,
            source: dir.join("refnet.conflist"),
        };
        let host = NetNs::open(pair.host.path()).unwrap();
        let runtime = Runtime::with_exec(
            vec![REFERENCE_DIR.into()],
            dir.join("cache"),
            Box::new(RawExec::in_netns(host)),
        );
        Fixture { pair, dir, runtime, net }
    }

    fn rt(&self, id: &str) -> RuntimeConf {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "portMappings".into(),
            json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
        );
        RuntimeConf {
            container_id: id.into(),
            netns: self.pair.container.path().display().to_string(),
            ifname: "eth0".into(),
            args: vec![],
            capability_args: caps,
        }
    }

    fn reserved_ips(&self) -> Vec<String> {
        let dir = self.dir.join("ipam/refnet");
        let mut ips: Vec<String> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("10.77.") || n.starts_with("fd77:"))
            .collect();
        ips.sort();
        ips
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn lifecycle(version: &str, tag: &str) {
    let f = Fixture::new(tag, version);
    let rt = f.rt("ref1");
    let result = f.runtime.add(&f.net, &rt).unwrap_or_else(|e| panic!("{version} add: {e}"));
    let ip = result.ips.first().expect("an address").address;
    assert!(ip.to_string().starts_with("10.77.0."), "{ip}");
    let ip6 = result.ips.get(1).expect("an IPv6 address").address;
    assert!(ip6.to_string().starts_with("fd77::"), "{ip6}");
    let addrs = f.pair.container.exec_ok(&["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(addrs.contains(&ip.to_string()), "container lacks {ip}: {addrs}");
    let cache = f.dir.join("cache/results/refnet-ref1-eth0");
    assert!(cache.is_file(), "cache entry written");
    assert_eq!(f.reserved_ips(), vec![ip.addr().to_string(), ip6.addr().to_string()]);
    if cni_spec::Version::parse(version).unwrap().supports_check() {
        check_against_reference(&f, &rt, version);
    }
    f.runtime.del(&f.net, &rt).unwrap_or_else(|e| panic!("{version} del: {e}"));
    assert!(!cache.exists(), "cache entry removed");
    assert!(f.reserved_ips().is_empty(), "IP released");
    assert!(f.pair.container.exec_ok(&["ip", "-o", "link"]).lines().all(|l| !l.contains("eth0")));
    f.runtime.del(&f.net, &rt).unwrap_or_else(|e| panic!("{version} second del: {e}"));
}

/// CHECK of bridge + host-local passes. The reference portmap of Debian's 1.1.1 checks its
/// IPv4 rules in the ip6tables table too (fixed upstream later: "check is called for each
/// address"), so its CHECK fails on every pod; the runner must report exactly that failure.
fn check_against_reference(f: &Fixture, rt: &RuntimeConf, version: &str) {
    let mut without_portmap = f.net.clone();
    without_portmap.list.plugins.truncate(1);
    f.runtime.check(&without_portmap, rt).unwrap_or_else(|e| panic!("{version} check: {e}"));
    match f.runtime.check(&f.net, rt) {
        Ok(()) => {}
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.contains("type=\"portmap\"") && text.contains("could not check ipv6 dnat"),
                "{text}"
            );
        }
    }
}

#[test]
fn reference_chain_0_3_1() {
    lifecycle("0.3.1", "ref031");
}

#[test]
fn reference_chain_0_4_0() {
    lifecycle("0.4.0", "ref040");
}

#[test]
fn reference_chain_1_0_0() {
    lifecycle("1.0.0", "ref100");
}

#[test]
fn gc_removes_a_stale_attachments_ip() {
    let f = Fixture::new("refgc", "1.0.0");
    let stale_ns = testkit::TestNs::new("refgcs");
    f.runtime.add(&f.net, &f.rt("keep")).unwrap();
    let stale = RuntimeConf { netns: stale_ns.path().display().to_string(), ..f.rt("stale") };
    f.runtime.add(&f.net, &stale).unwrap();
    assert_eq!(f.reserved_ips().len(), 4);
    let valid = vec![Attachment { container_id: "keep".into(), ifname: "eth0".into() }];
    let report = f.runtime.gc(&f.net, &valid).unwrap();
    assert_eq!(report.deleted, vec![Attachment { container_id: "stale".into(), ifname: "eth0".into() }]);
    assert_eq!(f.reserved_ips().len(), 2, "only the valid attachment keeps its IPs");
    assert!(f.dir.join("cache/results/refnet-keep-eth0").is_file());
    assert!(!f.dir.join("cache/results/refnet-stale-eth0").exists());
    f.runtime.del(&f.net, &f.rt("keep")).unwrap();
    assert!(f.reserved_ips().is_empty());
}
