//! Where things live inside the lab's state directory:
//!
//! ```text
//! STATE/state.json, lock            the lab's memory (see state)
//! STATE/bin/                        CNI_PATH of every node: twill-cni + reference plugins
//! STATE/datastore/                  the file datastore (--datastore file)
//! STATE/etcd-data/, etcd.log        the etcd server (--datastore etcd)
//! STATE/outside.log                 the outside host's server
//! STATE/nodes/node-N/net.d/         twilld's --cni-conf-dir
//! STATE/nodes/node-N/agent/         twilld's --state-dir
//! STATE/nodes/node-N/cni-cache/     the runtime side's result cache for the node's pods
//! STATE/nodes/node-N/multus/        multus's delegate cache (its `cniDir`); multus.log beside it
//! STATE/nodes/node-N/twilld.log
//! STATE/pods/NS_NAME.log            a pod's server
//! ```

use std::path::{Path, PathBuf};

use super::names::PodRef;

pub fn bin_dir(dir: &Path) -> PathBuf {
    dir.join("bin")
}

pub fn datastore_dir(dir: &Path) -> PathBuf {
    dir.join("datastore")
}

pub fn node_dir(dir: &Path, index: u8) -> PathBuf {
    dir.join("nodes").join(format!("node-{index}"))
}

pub fn cni_cache_dir(dir: &Path, index: u8) -> PathBuf {
    node_dir(dir, index).join("cni-cache")
}

pub fn pod_log(dir: &Path, pod: &PodRef) -> PathBuf {
    dir.join("pods").join(format!("{}_{}.log", pod.ns, pod.name))
}
