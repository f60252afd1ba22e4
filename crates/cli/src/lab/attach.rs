//! Attaching a pod namespace the way a kubelet's runtime does: through the runtime side
//! (`cni_exec`) with the plugins of the lab's bin dir, run inside the node's namespace, with
//! the node's network lists — the loopback network `lo` twilld wrote, then multus (the lab's
//! `00-multus.conf`), which attaches the cluster network `twill` and the pod's selections.

use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, Result};
use cni_exec::{LoadedList, RawExec, Runtime, RuntimeConf};
use netns::NetNs;

use super::layout;
use super::names::PodRef;
use super::state::NodeState;

/// The networks of a pod, in ADD order.
const NETWORKS: [&str; 2] = ["lo", POD_NETWORK];
/// The network whose result holds the pod's addresses.
const POD_NETWORK: &str = super::multus::NETWORK;
/// The pod's interface on the cluster network: its addresses are the pod's.
const POD_IFACE: &str = "eth0";
/// containerd's runtimeConfig key (and capability) for a pod's annotations.
pub const POD_ANNOTATIONS: &str = "io.kubernetes.cri.pod-annotations";

/// The runtime side as the node's kubelet would run it.
fn runtime(dir: &Path, node: &NodeState) -> Result<Runtime> {
    let ns = NetNs::open(netns::named_path(&node.netns))?;
    let exec = RawExec::in_netns(ns);
    Ok(Runtime::with_exec(vec![layout::bin_dir(dir)], layout::cni_cache_dir(dir, node.index), Box::new(exec)))
}

/// What a kubelet's runtime passes for a pod: CNI_ARGS, the attachment identity and, as
/// containerd does for plugins declaring the capability, the pod's annotations — so multus
/// reads the datastore only for the definitions a pod selects (a pod without selections is
/// attached during a datastore outage too).
pub fn runtime_conf_annotated(
    pod: &PodRef,
    netns_name: &str,
    annotations: &std::collections::BTreeMap<String, String>,
) -> RuntimeConf {
    let mut rt = runtime_conf(pod, netns_name);
    rt.capability_args.insert(POD_ANNOTATIONS.into(), serde_json::to_value(annotations).unwrap_or_default());
    rt
}

/// What a kubelet passes for a pod (CNI_ARGS), plus its attachment identity.
pub fn runtime_conf(pod: &PodRef, netns_name: &str) -> RuntimeConf {
    let id = container_id(pod);
    RuntimeConf {
        container_id: id.clone(),
        netns: netns::named_path(netns_name).display().to_string(),
        ifname: "eth0".into(),
        args: vec![
            ("IgnoreUnknown".into(), "1".into()),
            ("K8S_POD_NAMESPACE".into(), pod.ns.clone()),
            ("K8S_POD_NAME".into(), pod.name.clone()),
            ("K8S_POD_INFRA_CONTAINER_ID".into(), id),
        ],
        capability_args: serde_json::Map::new(),
    }
}

/// `NS_NAME`: `_` cannot occur in either part, so the id is unambiguous.
pub fn container_id(pod: &PodRef) -> String {
    format!("{}_{}", pod.ns, pod.name)
}

fn load(node: &NodeState, name: &str) -> Result<LoadedList> {
    cni_exec::load_network(&node.conf_dir, name).with_context(|| {
        format!("load network {name:?} from {} (has twilld written it?)", node.conf_dir.display())
    })
}

/// ADDs every network; on failure DELs what was added and reports the first error. Returns
/// the pod's addresses from the `twill` network's result.
pub fn attach(dir: &Path, node: &NodeState, rt: &RuntimeConf) -> Result<Vec<IpAddr>> {
    let runtime = runtime(dir, node)?;
    let mut added: Vec<LoadedList> = Vec::new();
    let mut ips = Vec::new();
    for name in NETWORKS {
        let outcome = load(node, name).and_then(|net| {
            let result = runtime.add(&net, rt).with_context(|| format!("add network {name:?}"))?;
            added.push(net);
            Ok(result)
        });
        match outcome {
            Ok(result) if name == POD_NETWORK => ips.extend(cluster_ips(&result)),
            Ok(_) => {}
            Err(e) => {
                for net in added.iter().rev() {
                    let _ = runtime.del(net, rt);
                }
                return Err(e.context(format!("attach {} on {}", rt.container_id, node.name)));
            }
        }
    }
    Ok(ips)
}

/// The addresses on the pod's cluster-network interface; the secondaries' are not the pod's
/// IPs (as in Kubernetes, where status.podIPs come from the cluster network only).
fn cluster_ips(result: &cni_spec::CniResult) -> Vec<IpAddr> {
    let on_pod_iface = |i: Option<usize>| {
        i.and_then(|i| result.interfaces.get(i)).is_some_and(|x| x.name == POD_IFACE && x.sandbox.is_some())
    };
    result.ips.iter().filter(|c| on_pod_iface(c.interface)).map(|c| c.address.addr()).collect()
}

/// DELs every network in reverse order, best-effort: every network is tried, the errors are
/// collected. DEL needs neither the pod namespace nor the node's network lists still to be
/// there: a network list missing from the conf dir is taken from the runtime's cache.
pub fn detach(dir: &Path, node: &NodeState, rt: &RuntimeConf) -> Vec<anyhow::Error> {
    let runtime = match runtime(dir, node) {
        Ok(r) => r,
        Err(e) => return vec![e],
    };
    let mut errors = Vec::new();
    for name in NETWORKS.iter().rev() {
        let net = load(node, name).or_else(|e| cached(&runtime, name, rt).ok_or(e));
        match net.and_then(|net| runtime.del(&net, rt).with_context(|| format!("del network {name:?}"))) {
            Ok(()) => {}
            Err(e) => errors.push(e.context(format!("detach {} on {}", rt.container_id, node.name))),
        }
    }
    errors
}

/// The network list ADD cached for this attachment, as libcni keeps it.
fn cached(runtime: &Runtime, name: &str, rt: &RuntimeConf) -> Option<LoadedList> {
    let entry = runtime.cache().get(name, &rt.container_id, &rt.ifname)?;
    let list = cni_spec::NetConfList::parse(&entry.config).ok()?;
    Some(LoadedList {
        list,
        bytes: entry.config,
        source: runtime.cache().path(name, &rt.container_id, &rt.ifname),
    })
}
