//! The network lists the bench drives, identical for both implementations: a minimal chain
//! (bridge + host-local) and a Kubernetes chain (bridge + host-local + portmap + bandwidth,
//! as containerd's and CRI-O's defaults plus pod bandwidth annotations produce). The options
//! follow containerd's default conflist: gateway, masquerading, hairpin. A third list, the
//! minimal one with twill's `spoofchk` on (the reference has no such option), is timed on
//! twill's side only: what anti-spoofing adds to a pod's ADD and DEL.

use std::path::Path;

use anyhow::{Context, Result};
use cni_exec::LoadedList;
use cni_spec::NetConfList;
use serde_json::{Map, Value, json};

use crate::provision::CNI_VERSION;

/// Which network list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Chain {
    Minimal,
    Kubernetes,
    /// Minimal with `spoofchk` (twill only, latency part only).
    Guarded,
}

/// Both chains, in report order.
pub const CHAINS: [Chain; 2] = [Chain::Minimal, Chain::Kubernetes];

/// The bandwidth every Kubernetes-chain pod asks for (bits/s), both directions.
pub const RATE_BITS: u64 = 100_000_000;
/// Its burst (bits).
pub const BURST_BITS: u64 = 1_000_000;
/// The port every hostPort maps to inside the pod.
pub const CONTAINER_PORT: u16 = 80;

impl Chain {
    pub fn label(self) -> &'static str {
        match self {
            Chain::Minimal => "minimal (bridge + host-local)",
            Chain::Kubernetes => "kubernetes (bridge + host-local + portmap + bandwidth)",
            Chain::Guarded => "minimal + spoofchk (bridge + host-local, twill only)",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Chain::Minimal => "minimal",
            Chain::Kubernetes => "kubernetes",
            Chain::Guarded => "guarded",
        }
    }

    /// The network name, also host-local's data subdirectory.
    pub fn network(self) -> &'static str {
        match self {
            Chain::Minimal => "twb-min",
            Chain::Kubernetes => "twb-k8s",
            Chain::Guarded => "twb-grd",
        }
    }

    pub fn bridge(self) -> &'static str {
        match self {
            Chain::Minimal => "twb-min0",
            Chain::Kubernetes => "twb-k8s0",
            Chain::Guarded => "twb-grd0",
        }
    }

    /// A /16: room for the density run's 500 live pods and more.
    pub fn subnet(self) -> &'static str {
        match self {
            Chain::Minimal => "10.88.0.0/16",
            Chain::Kubernetes => "10.89.0.0/16",
            Chain::Guarded => "10.90.0.0/16",
        }
    }

    /// Plugin types in chain order.
    pub fn plugins(self) -> &'static [&'static str] {
        match self {
            Chain::Minimal | Chain::Guarded => &["bridge", "host-local"],
            Chain::Kubernetes => &["bridge", "host-local", "portmap", "bandwidth"],
        }
    }

    /// The conflist, with host-local keeping its reservations under `ipam_dir`.
    pub fn conflist(self, ipam_dir: &Path) -> Value {
        let mut bridge = json!({
            "type": "bridge",
            "bridge": self.bridge(),
            "isGateway": true,
            "ipMasq": true,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "dataDir": ipam_dir,
                "ranges": [[{"subnet": self.subnet()}]],
                "routes": [{"dst": "0.0.0.0/0"}]
            }
        });
        if self == Chain::Guarded {
            bridge["spoofchk"] = json!(true);
        }
        let mut plugins = vec![bridge];
        if self == Chain::Kubernetes {
            plugins.push(json!({"type": "portmap", "capabilities": {"portMappings": true}}));
            plugins.push(json!({"type": "bandwidth", "capabilities": {"bandwidth": true}}));
        }
        json!({"cniVersion": CNI_VERSION, "name": self.network(), "plugins": plugins})
    }

    /// The parsed list, as the runtime side loads it.
    pub fn load(self, ipam_dir: &Path) -> Result<LoadedList> {
        let bytes = serde_json::to_vec(&self.conflist(ipam_dir))?;
        let list = NetConfList::parse(&bytes).with_context(|| format!("parse the {} chain", self.short()))?;
        Ok(LoadedList { list, bytes, source: ipam_dir.join(format!("{}.conflist", self.network())) })
    }

    /// Capability arguments of one pod: a hostPort (unique among live pods) and bandwidth
    /// limits for the Kubernetes chain; none for the minimal one.
    pub fn capability_args(self, host_port: u16) -> Map<String, Value> {
        let mut caps = Map::new();
        if self == Chain::Kubernetes {
            caps.insert(
                "portMappings".into(),
                json!([{"hostPort": host_port, "containerPort": CONTAINER_PORT, "protocol": "tcp"}]),
            );
            caps.insert(
                "bandwidth".into(),
                json!({"ingressRate": RATE_BITS, "ingressBurst": BURST_BITS,
                       "egressRate": RATE_BITS, "egressBurst": BURST_BITS}),
            );
        }
        caps
    }
}

/// A bridge-only list without IPAM (layer 2 only): the bridge plugin process on its own, for
/// the memory part.
pub fn bridge_without_ipam() -> Result<LoadedList> {
    let value = json!({"cniVersion": CNI_VERSION, "name": "twb-l2", "plugins": [{"type": "bridge", "bridge": "twb-l2"}]});
    let bytes = serde_json::to_vec(&value)?;
    let list = NetConfList::parse(&bytes).context("parse the layer-2 bridge list")?;
    Ok(LoadedList { list, bytes, source: "twb-l2.conflist".into() })
}

/// The stdin `bridge` hands its IPAM plugin: its own configuration with the list's name and
/// version.
pub fn ipam_stdin(chain: Chain, ipam_dir: &Path) -> Value {
    let list = chain.conflist(ipam_dir);
    let mut conf = list["plugins"][0].clone();
    conf["name"] = json!(chain.network());
    conf["cniVersion"] = json!(CNI_VERSION);
    conf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_name_their_plugins() {
        for chain in [Chain::Minimal, Chain::Kubernetes, Chain::Guarded] {
            let loaded = chain.load(Path::new("/tmp/x")).unwrap();
            let types: Vec<&str> =
                loaded.list.plugins.iter().filter_map(|p| p.get("type").and_then(Value::as_str)).collect();
            let expected: Vec<&str> =
                chain.plugins().iter().copied().filter(|p| *p != "host-local").collect();
            assert_eq!(types, expected);
            assert_eq!(loaded.list.name, chain.network());
        }
    }

    #[test]
    fn only_the_guarded_list_turns_spoofchk_on() {
        let on = |c: Chain| c.conflist(Path::new("/d"))["plugins"][0]["spoofchk"] == json!(true);
        assert!(on(Chain::Guarded));
        assert!(!on(Chain::Minimal) && !on(Chain::Kubernetes));
    }

    #[test]
    fn extra_lists_for_memory() {
        assert_eq!(bridge_without_ipam().unwrap().list.plugins.len(), 1);
        let stdin = ipam_stdin(Chain::Minimal, Path::new("/d"));
        assert_eq!(stdin["ipam"]["type"], "host-local");
        assert_eq!(stdin["name"], "twb-min");
    }

    #[test]
    fn kubernetes_pods_get_a_port_and_limits() {
        let caps = Chain::Kubernetes.capability_args(30001);
        assert_eq!(caps["portMappings"][0]["hostPort"], 30001);
        assert_eq!(caps["bandwidth"]["egressRate"], RATE_BITS);
        assert!(Chain::Minimal.capability_args(1).is_empty());
    }
}
