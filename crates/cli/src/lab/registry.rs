//! The lab's pods and namespaces in the cluster datastore, where the agents' policy
//! controller reads them: `/twill/namespaces/NAME` and `/twill/pods/NS/NAME`, JSON records
//! shaped like the parts of Kubernetes objects a NetworkPolicy implementation needs — labels
//! (namespaces get the automatic `kubernetes.io/metadata.name`), the pod's IPs and node, and
//! its named container ports in the Kubernetes e2e convention (`serve-80-tcp`, ...).
//!
//! With the etcd datastore the store is used from a thread inside the etcd namespace: the
//! namespace `twill` runs in has no route to the lab's underlay.

use std::collections::BTreeMap;
use std::path::Path;

use agent::policy::ClusterRecords;
use agent::record::NamedPort;
use agent::{NamespaceRecord, PodRecord, Registry};
use anyhow::{Context, Result};
use netns::NetNs;

use super::agent::datastore_url;
use super::names::PodRef;
use super::state::{LabState, PodState};
use super::wire::{PORTS, Protocol, port_name};

/// The label Kubernetes puts on every namespace.
const NAME_LABEL: &str = "kubernetes.io/metadata.name";

fn namespace_record(name: &str, labels: &BTreeMap<String, String>) -> NamespaceRecord {
    let mut labels = labels.clone();
    labels.insert(NAME_LABEL.to_string(), name.to_string());
    NamespaceRecord { name: name.to_string(), labels }
}

fn pod_record(pod: &PodState, node: &str) -> PodRecord {
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
    PodRecord {
        namespace: pod.ns.clone(),
        name: pod.name.clone(),
        node: node.to_string(),
        ips: pod.ips.clone(),
        labels: pod.labels.clone(),
        ports,
    }
}

/// Runs `f` with the lab's datastore, from inside the etcd namespace when the store is etcd.
pub fn with_registry<T: Send>(
    dir: &Path,
    state: &LabState,
    f: impl FnOnce(Registry<'_>) -> Result<T> + Send,
) -> Result<T> {
    let url = datastore_url(dir, &state.options);
    let conf = agent::DatastoreConf::parse(&url, agent::store::EtcdTls::default())?;
    let work = || -> Result<T> {
        let store = conf.open().with_context(|| format!("open datastore {url}"))?;
        f(Registry::new(store.as_ref())).with_context(|| format!("datastore {url}"))
    };
    match &state.etcd {
        Some(etcd) => NetNs::open(netns::named_path(&etcd.netns))?.run(work)?,
        None => work(),
    }
}

pub fn put_namespace(
    dir: &Path,
    state: &LabState,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<()> {
    let record = namespace_record(name, labels);
    with_registry(dir, state, |r| Ok(r.put_namespace(&record)?))
}

pub fn put_pod(dir: &Path, state: &LabState, pod: &PodState) -> Result<()> {
    let record = pod_record(pod, &state.node(pod.node)?.name);
    with_registry(dir, state, |r| Ok(r.put_pod(&record)?))
}

pub fn delete_pod(dir: &Path, state: &LabState, pod: &PodRef) -> Result<()> {
    with_registry(dir, state, |r| Ok(r.delete_pod(&pod.ns, &pod.name).map(drop)?))
}

/// Everything NetworkPolicy decisions depend on, as stored, and the store's revision.
pub fn read_cluster(dir: &Path, state: &LabState) -> Result<(ClusterRecords, u64)> {
    with_registry(dir, state, |r| {
        let (pods, namespaces, policies, nodes) = (r.pods()?, r.namespaces()?, r.policies()?, r.nodes()?);
        let errors = [&pods.errors, &namespaces.errors, &policies.errors, &nodes.errors];
        for e in errors.into_iter().flatten() {
            eprintln!("twill: ignoring unreadable record: {e}");
        }
        let revision = pods.revision.max(namespaces.revision).max(policies.revision).max(nodes.revision);
        let records = ClusterRecords {
            pods: pods.items,
            namespaces: namespaces.items,
            policies: policies.items,
            nodes: nodes.items,
        };
        Ok((records, revision))
    })
}

/// The datastore's current revision: what every agent must have caught up with for a
/// change just written to be in force.
pub fn revision(dir: &Path, state: &LabState) -> Result<u64> {
    with_registry(dir, state, |r| Ok(r.list::<serde_json::Value>(agent::layout::POLICIES)?.revision))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_look_like_the_kubernetes_objects_policy_needs() {
        let ns = namespace_record("a", &BTreeMap::from([("team".into(), "x".into())]));
        assert_eq!(
            serde_json::to_value(&ns).unwrap(),
            serde_json::json!({"name": "a", "labels": {"kubernetes.io/metadata.name": "a", "team": "x"}})
        );
        let pod = PodState {
            ns: "a".into(),
            name: "p1".into(),
            netns: "twl-pod-a-p1".into(),
            node: 2,
            container_id: "a_p1".into(),
            ips: vec!["10.244.2.2".parse().unwrap()],
            labels: BTreeMap::from([("app".into(), "web".into())]),
            server: None,
        };
        let v = serde_json::to_value(pod_record(&pod, "node-2")).unwrap();
        assert_eq!(v["namespace"], "a");
        assert_eq!(v["node"], "node-2");
        assert_eq!(v["ips"], serde_json::json!(["10.244.2.2"]));
        assert_eq!(v["labels"], serde_json::json!({"app": "web"}));
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
