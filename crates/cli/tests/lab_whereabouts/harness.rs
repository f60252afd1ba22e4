//! The lab and the secondary network the whereabouts acceptance runs on: a 3-node lab on
//! etcd (TLS, 3 members), and per node a network list `wbnet` — macvlan on the node's
//! underlay `eth0` (bridge mode, so pods on different nodes talk across the underlay
//! switch) with whereabouts over 10.99.0.0/24, then twill-pod so the node's twilld
//! publishes the pods — whose whereabouts finds the datastore through the flat file twilld
//! wrote into the node's CNI config dir.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use super::lab_support::wait_for;

use serde_json::{Value, json};

pub const TWILL: &str = env!("CARGO_BIN_EXE_twill");
pub const NET: &str = "wbnet";
pub const RANGE: &str = "10.99.0.0/24";
pub const POD_NS: &str = "wb";

/// The lab, its status as `lab up` left it, and the test's own files.
pub struct Lab {
    pub lab: super::lab_support::Lab,
    pub status: Value,
    pub dir: testkit::TempDir,
}

/// One node as the tests use it.
pub struct Node {
    pub name: String,
    pub netns: PathBuf,
    pub conf_dir: PathBuf,
    pub bin_dir: PathBuf,
    /// The test's own NETCONFPATH and result cache for this node.
    pub netconf: PathBuf,
    pub cache: PathBuf,
}

impl Lab {
    pub fn up(tag: &str, args: &[&str]) -> Lab {
        let lab = super::lab_support::Lab::up(tag, args);
        let status = lab.status();
        Lab { lab, status, dir: testkit::TempDir::new(tag) }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        self.lab.command(args)
    }

    /// `twill cluster ARGS` against the lab's datastore, from inside node-1.
    pub fn cluster(&self, args: &[&str]) -> String {
        self.lab.cluster_ok("node-1", args)
    }

    /// The nodes, with `wbnet` written for each (waiting for twilld's flat file first).
    pub fn nodes(&self) -> Vec<Node> {
        let nodes = self.status["nodes"].as_array().unwrap();
        nodes
            .iter()
            .map(|n| {
                let name = n["name"].as_str().unwrap().to_string();
                let conf_dir = PathBuf::from(n["cni_conf_dir"].as_str().unwrap());
                let node = Node {
                    netns: netns::named_path(n["netns"].as_str().unwrap()),
                    bin_dir: PathBuf::from(n["cni_bin_dir"].as_str().unwrap()),
                    netconf: self.dir.path().join(&name).join("net.d"),
                    cache: self.dir.path().join(&name).join("cache"),
                    conf_dir,
                    name,
                };
                write_network(&node, None);
                node
            })
            .collect()
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "{}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The flat file twilld writes for `node`.
pub fn flat_file(node: &Node) -> PathBuf {
    node.conf_dir.join("whereabouts.d").join("whereabouts.conf")
}

/// `wbnet` as a network list: macvlan + whereabouts, then twill-pod with the node's journal
/// (taken from the list twilld wrote). `node_name` overrides the flat file's.
pub fn network(node: &Node, node_name: Option<&str>) -> Value {
    let flat = flat_file(node);
    wait_for(&format!("{} written by twilld", flat.display()), Duration::from_secs(30), || flat.is_file());
    let twill: Value =
        serde_json::from_slice(&std::fs::read(node.conf_dir.join("10-twill.conflist")).unwrap()).unwrap();
    let pod = twill["plugins"].as_array().unwrap().iter().find(|p| p["type"] == "twill-pod").unwrap().clone();
    let mut ipam = json!({"type": "whereabouts", "range": RANGE, "configuration_path": flat});
    if let Some(n) = node_name {
        ipam["node_name"] = json!(n);
    }
    json!({
        "cniVersion": "1.1.0",
        "name": NET,
        "plugins": [
            {"type": "macvlan", "master": "eth0", "mode": "bridge", "ipam": ipam},
            {"type": "twill-pod", "journalDir": pod["journalDir"], "agentSocket": pod["agentSocket"]}
        ]
    })
}

fn write_network(node: &Node, node_name: Option<&str>) {
    std::fs::create_dir_all(&node.netconf).unwrap();
    let list = network(node, node_name);
    std::fs::write(node.netconf.join("20-wbnet.conflist"), list.to_string()).unwrap();
}

/// The list as the runtime crate loads it.
pub fn loaded(list: &Value) -> cni_exec::LoadedList {
    let bytes = list.to_string().into_bytes();
    cni_exec::LoadedList {
        list: cni_spec::NetConfList::parse(&bytes).unwrap(),
        bytes,
        source: Path::new("wbnet.conflist").into(),
    }
}

/// `twill cni add wbnet POD` inside `node`, as a runtime on the node would run it.
pub fn cni_add(lab: &Lab, node: &Node, pod: &testkit::TestNs, id: &str) -> std::process::Child {
    let netns = pod.path().display().to_string();
    let mut cmd = lab.command(&["exec", &node.name, "--", TWILL, "cni", "add", NET, &netns]);
    cmd.env("NETCONFPATH", &node.netconf)
        .env("CNI_PATH", &node.bin_dir)
        .env("CNI_CACHE_DIR", &node.cache)
        .env("CNI_IFNAME", "net1")
        .env("CNI_CONTAINERID", id)
        .env("CNI_ARGS", format!("K8S_POD_NAMESPACE={POD_NS};K8S_POD_NAME={id}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd.spawn().unwrap()
}

/// `container ID → (ip, node)` of every reservation in `wbnet`'s pool.
pub fn reservations(lab: &Lab) -> std::collections::BTreeMap<String, (String, String)> {
    let pools: Value = serde_json::from_str(&lab.cluster(&["get", "ippools", "-o", "json"])).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for p in pools.as_array().unwrap().iter().filter(|p| p["range"] == RANGE) {
        for r in p["reservations"].as_array().unwrap() {
            let id = r["container_id"].as_str().unwrap().to_string();
            let prev = out.insert(
                id.clone(),
                (r["ip"].as_str().unwrap().to_string(), r["node"].as_str().unwrap().to_string()),
            );
            assert!(prev.is_none(), "{id} holds two addresses");
        }
    }
    out
}

/// Pods of namespace `wb` the cluster has records of.
pub fn published(lab: &Lab) -> std::collections::BTreeSet<String> {
    let pods: Value =
        serde_json::from_str(&lab.cluster(&["get", "pods", "-n", POD_NS, "-o", "json"])).unwrap();
    pods.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect()
}
