//! End-to-end fixtures: twill's plugin binary (and, for mixed chains, reference plugins)
//! installed in a temporary CNI bin dir, run by the runtime crate inside a fake host netns
//! against container namespaces.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use cni_exec::{LoadedList, RawExec, Runtime, RuntimeConf};
use cni_spec::{CniResult, NetConfList};
use netns::NetNs;
use serde_json::Value;
use testkit::{TestNs, require_privileges};

/// Where the Debian reference plugins live.
pub const REFERENCE_DIR: &str = "/usr/lib/cni";

/// The CNI spec versions every plugin is exercised with.
pub const VERSIONS: [&str; 7] = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// A temp dir holding a CNI bin dir, a cache dir and IPAM data, removed on drop.
pub struct World {
    pub host: TestNs,
    pub dir: PathBuf,
    pub runtime: Runtime,
}

impl World {
    /// `twill` plugin names come from twill-cni (the cluster-aware ones from
    /// twill-cni-cluster); `reference` ones link to /usr/lib/cni.
    pub fn new(tag: &str, twill: &[&str], reference: &[&str]) -> World {
        require_privileges();
        let host = TestNs::new(tag);
        let dir = std::env::temp_dir().join(format!("twill-e2e-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let exe = Path::new(env!("CARGO_BIN_EXE_twill-cni"));
        let cluster_exe = Path::new(env!("CARGO_BIN_EXE_twill-cni-cluster"));
        for name in twill {
            let target = if plugins::CLUSTER_NAMES.contains(name) { cluster_exe } else { exe };
            std::os::unix::fs::symlink(target, bin.join(name)).unwrap();
        }
        for name in reference {
            let target = Path::new(REFERENCE_DIR).join(name);
            assert!(
                target.is_file(),
                "reference plugin {} missing: run scripts/install-deps.sh",
                target.display()
            );
            std::os::unix::fs::symlink(target, bin.join(name)).unwrap();
        }
        let exec = RawExec::in_netns(NetNs::open(host.path()).unwrap());
        let runtime = Runtime::with_exec(vec![bin], dir.join("cache"), Box::new(exec));
        World { host, dir, runtime }
    }

    /// A network list from JSON, with `{dir}` in strings replaced by the world's temp dir.
    pub fn list(&self, json: Value) -> LoadedList {
        let text = json.to_string().replace("{dir}", &self.dir.display().to_string());
        let bytes = text.into_bytes();
        LoadedList { list: NetConfList::parse(&bytes).unwrap(), bytes, source: self.dir.join("net.conflist") }
    }

    pub fn rt(&self, id: &str, container: &TestNs) -> RuntimeConf {
        RuntimeConf {
            container_id: id.into(),
            netns: container.path().display().to_string(),
            ifname: "eth0".into(),
            ..Default::default()
        }
    }

    pub fn add(&self, net: &LoadedList, rt: &RuntimeConf) -> CniResult {
        self.runtime.add(net, rt).unwrap_or_else(|e| panic!("add {}: {e}", rt.container_id))
    }

    /// Files in the host-local data dir of `network` that are reservations.
    pub fn reservations(&self, network: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.join("ipam").join(network))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "lock" && !n.starts_with("last_reserved_ip"))
            .collect();
        names.sort();
        names
    }

    /// Link names in the fake host.
    pub fn host_links(&self) -> Vec<String> {
        self.host.handle().link_list().unwrap().into_iter().map(|l| l.name).collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One echo answered by `dst`, from inside `ns`: `ping -c 1 -w 3` sends until one reply comes
/// or 3 s have passed (one echo lost on a busy machine is no failure).
pub fn ping(ns: &TestNs, dst: &str) -> bool {
    ns.exec(&["ping", "-c", "1", "-w", "3", dst]).status.success()
}

/// Addresses (with prefix) on `dev` in `ns`.
pub fn addrs(ns: &TestNs, dev: &str) -> Vec<String> {
    let h = ns.handle();
    let Some(link) = h.link_get(dev).unwrap() else { return Vec::new() };
    h.addr_list(Some(link.index)).unwrap().into_iter().map(|a| a.net.to_string()).collect()
}
