//! The lab's side of the cluster datastore. The lab writes exactly what an operator writes —
//! namespaces, NetworkPolicies and pods' labels and named ports (their `PodMeta`), through
//! `twill_cluster::ops`, the code `twill cluster` runs — and reads what the nodes publish:
//! a pod's record appears when its node's twilld has seen the attachment the CNI chain
//! recorded, and disappears after its DEL.
//!
//! With the etcd datastore the store is used from inside the etcd namespace: the namespace
//! `twill` runs in has no route to the lab's underlay.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use agent::policy::ClusterRecords;
use anyhow::{Context, Result, bail};
use cluster::manifest::Manifest;
use cluster::ops::{self, Outcome};
use cluster::record::NamedPort;
use cluster::{Datastore, PodMeta, PodRecord, Registry};
use netns::NetNs;

use super::agent::datastore_conf;
use super::names::PodRef;
use super::state::LabState;
use super::wire::{PORTS, Protocol, port_name};

/// How long a node may take to publish (or withdraw) a pod after its ADD (or DEL).
const PUBLISH_LIMIT: Duration = Duration::from_secs(10);

/// What the lab says of a pod: its labels and annotations, and the named ports of its server
/// in the Kubernetes e2e convention (`serve-80-tcp`, ...).
pub fn pod_meta(
    pod: &PodRef,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> PodMeta {
    let ports = PORTS
        .iter()
        .flat_map(|&port| {
            [Protocol::Tcp, Protocol::Udp, Protocol::Sctp].map(|proto| NamedPort {
                name: port_name(port, proto),
                port,
                protocol: proto.as_str().to_uppercase(),
            })
        })
        .collect();
    PodMeta {
        namespace: pod.ns.clone(),
        name: pod.name.clone(),
        labels: labels.clone(),
        annotations: annotations.clone(),
        ports,
    }
}

/// Runs `f` with the lab's datastore, from inside the etcd namespace when the store is etcd.
pub fn with_store<T: Send>(
    dir: &Path,
    state: &LabState,
    f: impl FnOnce(&dyn Datastore) -> Result<T> + Send,
) -> Result<T> {
    let conf = datastore_conf(dir, state)?;
    let work = || -> Result<T> {
        let store = conf.open().with_context(|| format!("open datastore {conf}"))?;
        f(store.as_ref()).with_context(|| format!("datastore {conf}"))
    };
    match &state.etcd {
        Some(etcd) => NetNs::open(netns::named_path(etcd.netns()))?.run(work)?,
        None => work(),
    }
}

/// Applies objects as `twill cluster apply` does.
pub fn apply(dir: &Path, state: &LabState, objects: &[Manifest]) -> Result<Vec<Outcome>> {
    with_store(dir, state, |s| Ok(ops::apply(s, objects)?))
}

/// Deletes objects as `twill cluster delete` does.
pub fn delete(dir: &Path, state: &LabState, objects: &[Manifest]) -> Result<Vec<Outcome>> {
    with_store(dir, state, |s| Ok(ops::delete(s, objects)?))
}

/// Waits until the pod's node has published it (`present`) with an address and the
/// network-status multus recorded, or withdrawn it.
pub fn wait_published(
    dir: &Path,
    state: &LabState,
    pod: &PodRef,
    present: bool,
) -> Result<Option<PodRecord>> {
    with_store(dir, state, |s| {
        let reg = Registry::new(s);
        let started = Instant::now();
        loop {
            let rec: Option<PodRecord> = reg.get(&cluster::layout::pod_key(&pod.ns, &pod.name))?;
            match (&rec, present) {
                (Some(r), true) if !r.ips.is_empty() && !r.network_status.is_empty() => return Ok(rec),
                (None, false) => return Ok(None),
                _ if started.elapsed() >= PUBLISH_LIMIT => {
                    let what = if present { "published" } else { "withdrawn" };
                    bail!(
                        "pod {pod} was not {what} by its node within {}s (see twilld.log)",
                        PUBLISH_LIMIT.as_secs()
                    )
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    })
}

/// Everything NetworkPolicy decisions depend on, as stored, and the store's revision.
pub fn read_cluster(dir: &Path, state: &LabState) -> Result<(ClusterRecords, u64)> {
    with_store(dir, state, |s| {
        let (mut records, revision) = agent::policy::read_records(s)?;
        let nodes = Registry::new(s).nodes()?;
        for e in &nodes.errors {
            eprintln!("twill: ignoring unreadable record: {e}");
        }
        records.nodes = nodes.items;
        Ok((records, revision.max(nodes.revision)))
    })
}

/// The datastore's current revision: what every agent must have caught up with for a
/// change just written to be in force.
pub fn revision(dir: &Path, state: &LabState) -> Result<u64> {
    with_store(dir, state, |s| Ok(s.list(cluster::layout::POLICIES)?.revision))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_carry_the_e2e_named_ports() {
        let pod = PodRef { ns: "a".into(), name: "p1".into() };
        let v = serde_json::to_value(pod_meta(
            &pod,
            &BTreeMap::from([("app".into(), "web".into())]),
            &BTreeMap::new(),
        ))
        .unwrap();
        assert_eq!(
            (&v["namespace"], &v["name"], &v["labels"]),
            (&"a".into(), &"p1".into(), &serde_json::json!({"app": "web"}))
        );
        let names: Vec<&str> =
            v["ports"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "serve-80-tcp",
                "serve-80-udp",
                "serve-80-sctp",
                "serve-81-tcp",
                "serve-81-udp",
                "serve-81-sctp"
            ]
        );
        assert_eq!(
            v["ports"][2],
            serde_json::json!({"name": "serve-80-sctp", "port": 80, "protocol": "SCTP"})
        );
    }
}
