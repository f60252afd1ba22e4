//! Every lab node runs its pods through multus, as a cluster with Multus installed does: the
//! lab writes `00-multus.conf` into each node's CNI config dir — the seed notes' shape
//! (`capabilities`, `clusterNetwork` pointing at the network list the node's twilld writes)
//! plus where the cluster datastore is — and attaches pods with it, passing each pod's
//! annotations as containerd does (`io.kubernetes.cri.pod-annotations`). Pods without a
//! `k8s.v1.cni.cncf.io/networks` annotation get just the cluster network and never make
//! multus read the datastore. `twill lab status` still names `twill` as each node's
//! `network` (what a hand-made CRI-style attachment uses) and this one as `multus_network`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::agent::datastore_conf;
use super::layout;
use super::state::{LabState, NodeState};

/// The network lab pods are attached with.
pub const NETWORK: &str = "multus-cni-network";
pub const CONF_FILE: &str = "00-multus.conf";
/// The network list twilld writes, which is the cluster network.
const CLUSTER_CONFLIST: &str = "10-twill.conflist";

/// Where multus keeps a node's delegate cache, its log and files of definitions without config.
pub fn cni_dir(dir: &Path, node: &NodeState) -> PathBuf {
    layout::node_dir(dir, node.index).join("multus")
}

/// Multus's `confDir`: the files of definitions whose config is empty (one per node, so a
/// definition can mean a node-local network, e.g. host-local ranges per node).
pub fn conf_dir(dir: &Path, node: &NodeState) -> PathBuf {
    layout::node_dir(dir, node.index).join("multus.d")
}

/// `00-multus.conf` of `node`.
pub fn build_conf(dir: &Path, state: &LabState, node: &NodeState) -> Result<Value> {
    let ds = datastore_conf(dir, state)?;
    let node_dir = layout::node_dir(dir, node.index);
    let mut conf = json!({
        // A single-plugin `.conf` has no `cniVersions`: 1.0.0 is what every runtime's libcni
        // takes (containerd 1.6 and podman 4.3 refuse 1.1.0), as twilld's lists do.
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "type": "multus",
        "capabilities": {"portMappings": true, "bandwidth": true, super::attach::POD_ANNOTATIONS: true},
        "clusterNetwork": node.conf_dir.join(CLUSTER_CONFLIST),
        "confDir": conf_dir(dir, node),
        "cniDir": cni_dir(dir, node),
        "datastore": ds.endpoint.to_string(),
        "logLevel": "verbose",
        "logFile": node_dir.join("multus.log"),
        "logToStderr": false,
    });
    for (key, path) in [("etcdCACert", &ds.tls.cacert), ("etcdCert", &ds.tls.cert), ("etcdKey", &ds.tls.key)]
    {
        if let Some(p) = path {
            conf[key] = json!(p);
        }
    }
    Ok(conf)
}

/// Writes every node's `00-multus.conf`.
pub fn write_confs(dir: &Path, state: &LabState) -> Result<()> {
    for node in &state.nodes {
        for d in [&node.conf_dir, &conf_dir(dir, node)] {
            std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
        }
        let path = node.conf_dir.join(CONF_FILE);
        let text = serde_json::to_string_pretty(&build_conf(dir, state, node)?)?;
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}
