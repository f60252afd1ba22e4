//! twilld's datastore records, as any writer to the datastore may have left them, and what
//! the agent computes from them: peers' routes (host-gw, vxlan) and the NetworkPolicy world
//! compiled to a node's ruleset. Input: NUL-separated `KIND:JSON` fields, KIND one of node,
//! subnet, pod, podmeta, namespace, policy. Beyond no panic: every record that decodes encodes and
//! decodes to itself.
#![no_main]

use agent::backend::Peer;
use agent::backend::plan::{Plan, plan_changes, plan_host_gw, plan_vxlan};
use agent::policy::{ClusterRecords, build_world};
use cluster::record::{decode, encode};
use cluster::store::Entry;
use cluster::{NamespaceRecord, NodeRecord, PodMeta, PodRecord, PolicyRecord, SubnetOwner};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use twill_fuzz::all_fields;

fuzz_target!(|data: &[u8]| {
    let mut records = ClusterRecords::default();
    let mut metas: Vec<PodMeta> = Vec::new();
    for field in all_fields(data) {
        let Some(colon) = field.iter().position(|b| *b == b':') else { continue };
        let (kind, json) = (&field[..colon], &field[colon + 1..]);
        match kind {
            b"node" => records.nodes.extend(read::<NodeRecord>("/twill/nodes/n", json)),
            b"subnet" => drop(read::<SubnetOwner>("/twill/subnets/10.244.0.0-24", json)),
            b"pod" => records.pods.extend(read::<PodRecord>("/twill/pods/ns/p", json)),
            b"podmeta" => metas.extend(read::<PodMeta>("/twill/podmeta/ns/p", json)),
            b"namespace" => records.namespaces.extend(read::<NamespaceRecord>("/twill/namespaces/ns", json)),
            b"policy" => records.policies.extend(read::<PolicyRecord>("/twill/policies/ns/p", json)),
            _ => {}
        }
    }
    // As the controller sees pods: the operator's metadata laid over what the node published.
    records.pods = std::mem::take(&mut records.pods)
        .into_iter()
        .map(|p| {
            let meta = metas.iter().find(|m| m.namespace == p.namespace && m.name == p.name);
            p.with_meta(meta)
        })
        .collect();
    routes(&records.nodes);
    let (world, _problems) = build_world(&records);
    let nodes: Vec<&str> = records.pods.iter().map(|p| p.node.as_str()).collect();
    for node in nodes.into_iter().take(2) {
        let rs = policy::compile(&world, &world.pods_on(node));
        let _ = policy::apply_batch(&rs);
    }
});

fn read<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(key: &str, json: &[u8]) -> Option<T> {
    let entry = Entry { key: key.into(), value: json.to_vec(), version: 1, mod_revision: 1, lease: None };
    let record: T = decode(&entry).ok()?;
    let bytes = encode(key, &record).expect("a decoded record encodes");
    let again = Entry { value: bytes, ..entry };
    assert_eq!(decode::<T>(&again).expect("our encoding decodes"), record, "record changed through JSON");
    Some(record)
}

fn routes(nodes: &[NodeRecord]) {
    let peers: Vec<Peer> = nodes.iter().filter_map(|n| Peer::from_record(n).ok()).collect();
    for plan in [plan_host_gw(&peers, 2), plan_vxlan(&peers, 3)] {
        let changes = plan_changes(&plan, &Plan::default());
        assert_eq!(changes.add, plan, "from nothing, everything is added");
        assert!(plan_changes(&plan, &plan).is_empty(), "a plan already in place changes nothing");
    }
}
