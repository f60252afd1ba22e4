//! The JSON records kept in the datastore (keys in [`crate::layout`]). Unknown fields are
//! ignored and new fields get defaults, so agents of neighbouring versions read each other.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::multinet::NetworkStatus;
use crate::store::{Entry, StoreError};

/// How a node reaches the other nodes' pod subnets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// Plain routes via the peer's node address (one L2 segment).
    HostGw,
    /// A vxlan device with per-peer FDB, neighbour and route entries.
    Vxlan,
    /// Routes exchanged by BIRD, the BGP daemon twilld runs.
    Bgp,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::HostGw => "host-gw",
            BackendKind::Vxlan => "vxlan",
            BackendKind::Bgp => "bgp",
        }
    }
}

impl FromStr for BackendKind {
    type Err = String;

    fn from_str(s: &str) -> Result<BackendKind, String> {
        match s {
            "host-gw" => Ok(BackendKind::HostGw),
            "vxlan" => Ok(BackendKind::Vxlan),
            "bgp" => Ok(BackendKind::Bgp),
            _ => Err(format!("unknown backend {s:?} (expected host-gw, vxlan or bgp)")),
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `/twill/nodes/NAME`: a node that is part of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub name: String,
    /// The node's underlay address: next hop (host-gw) or VTEP (vxlan) for its pods.
    pub node_ip: IpAddr,
    /// An IPv6 underlay address, when the node has one (host-gw next hop for IPv6 pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_ip6: Option<IpAddr>,
    pub subnet: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet6: Option<IpNet>,
    /// MAC of the node's vxlan device (`aa:bb:cc:dd:ee:ff`), with the vxlan backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtep_mac: Option<String>,
    pub backend: BackendKind,
    /// Unix seconds when the node's lease runs out unless renewed. Informational: the
    /// datastore lease is what removes the record of a node that went away.
    #[serde(default)]
    pub expires: u64,
    /// Unix seconds of the agent's last renewal.
    #[serde(default)]
    pub heartbeat: u64,
    /// The agent's own view: `joining`, `ready`, or `degraded: STEPS` when its last
    /// reconcile pass failed somewhere.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub health: String,
    /// The node's BGP AS and role, with the bgp backend: its peers need them to set up
    /// their sessions to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<NodeBgp>,
    /// The agent's HTTP server (`/flows`, `/metrics`) as `HOST:PORT`, when it listens beyond
    /// its node's loopback: where `twill cluster flows` asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// The node's labels (`--node-labels`): what AdminNetworkPolicy `nodes` peers select.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The BGP side of a node record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeBgp {
    /// The node's AS number (the cluster's, or its own override).
    #[serde(rename = "as")]
    pub asn: u32,
    /// The node is a route reflector: the other nodes peer with it instead of a full mesh.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub route_reflector: bool,
    /// BGP sessions the node's BIRD has configured, and how many are established, as of
    /// its last renewal (what `twill cluster get nodes -o wide` shows).
    #[serde(default)]
    pub sessions: u32,
    #[serde(default)]
    pub sessions_up: u32,
}

/// `/twill/subnets/CIDR`: who holds a pod subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetOwner {
    pub node: String,
}

/// `/twill/namespaces/NAME`, written by `twill lab` for the policy controller.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceRecord {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A named container port, as a NetworkPolicy may refer to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedPort {
    pub name: String,
    pub port: u16,
    /// `TCP`, `UDP` or `SCTP`, as Kubernetes spells it.
    pub protocol: String,
}

/// `/twill/pods/NS/NAME`: a pod attached on a node, published by that node's twilld from
/// its attachment journal (what the CNI chain recorded at ADD). `labels` and `ports` are the
/// ones the runtime gave, if any; the operator's come from the pod's [`PodMeta`], and
/// [`PodRecord::with_meta`] gives the pod as policy sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRecord {
    pub namespace: String,
    pub name: String,
    pub node: String,
    #[serde(default)]
    pub ips: Vec<IpAddr>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub ports: Vec<NamedPort>,
    /// The attachment: container, interface, namespace path and CNI network.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ifname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub netns: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub network: String,
    /// Annotations the runtime passed at ADD.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Unix seconds of the ADD.
    #[serde(default)]
    pub since: u64,
    /// Every interface of the pod and what it got (`k8s.v1.cni.cncf.io/network-status`), as
    /// the multus plugin recorded it at ADD; empty for pods attached without it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_status: Vec<NetworkStatus>,
}

impl PodRecord {
    /// The pod with the operator's labels, annotations and named ports laid over the
    /// runtime's (the operator's win where both set a key).
    pub fn with_meta(mut self, meta: Option<&PodMeta>) -> PodRecord {
        if let Some(m) = meta {
            self.labels.extend(m.labels.clone());
            self.annotations.extend(m.annotations.clone());
            if !m.ports.is_empty() {
                self.ports = m.ports.clone();
            }
        }
        self
    }
}

/// `/twill/podmeta/NS/NAME`: what the operator says about a pod — its labels, annotations
/// and named container ports, as the metadata and spec of a Kubernetes Pod say them. Written
/// by `twill cluster apply|label`; it may exist before the pod is attached and outlives it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodMeta {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<NamedPort>,
}

/// `/twill/policies/NS/NAME`: a `networking.k8s.io/v1` NetworkPolicy; `spec` is its spec as
/// Kubernetes writes it in JSON (podSelector, policyTypes, ingress, egress).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub namespace: String,
    pub name: String,
    pub spec: serde_json::Value,
}

/// `/twill/adminpolicies/NAME` (an AdminNetworkPolicy) or `/twill/baselinepolicies/default`
/// (the BaselineAdminNetworkPolicy): cluster-scoped, `spec` as Kubernetes writes it in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminPolicyRecord {
    pub name: String,
    pub spec: serde_json::Value,
}

/// Why a record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("invalid {what} name {name:?}: {reason}")]
    InvalidName { what: &'static str, name: String, reason: &'static str },
    #[error("decode {key}: {source}")]
    Decode { key: String, source: serde_json::Error },
    #[error("encode {key}: {source}")]
    Encode { key: String, source: serde_json::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The record in `entry`.
pub fn decode<T: DeserializeOwned>(entry: &Entry) -> Result<T, RecordError> {
    serde_json::from_slice(&entry.value)
        .map_err(|source| RecordError::Decode { key: entry.key.clone(), source })
}

/// `value` as the bytes stored under `key`.
pub fn encode<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>, RecordError> {
    serde_json::to_vec(value).map_err(|source| RecordError::Encode { key: key.to_string(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeRecord {
        NodeRecord {
            name: "node-1".into(),
            node_ip: "10.100.0.11".parse().unwrap(),
            node_ip6: None,
            subnet: "10.244.1.0/24".parse().unwrap(),
            subnet6: Some("fd00:10:244:1::/64".parse().unwrap()),
            vtep_mac: Some("0a:58:0a:f4:01:00".into()),
            backend: BackendKind::Vxlan,
            expires: 1_700_000_030,
            bgp: None,
            http: None,
            heartbeat: 0,
            health: String::new(),
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn node_record_json_is_stable() {
        let v = serde_json::to_value(node()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "name": "node-1", "node_ip": "10.100.0.11", "subnet": "10.244.1.0/24",
                "subnet6": "fd00:10:244:1::/64", "vtep_mac": "0a:58:0a:f4:01:00",
                "backend": "vxlan", "expires": 1_700_000_030u64, "heartbeat": 0
            })
        );
        let back: NodeRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, node());
        let rr = NodeBgp { asn: 64512, route_reflector: true, sessions: 3, sessions_up: 2 };
        let bgp = NodeRecord { bgp: Some(rr), ..node() };
        let v = serde_json::to_value(&bgp).unwrap();
        assert_eq!(
            v["bgp"],
            serde_json::json!({"as": 64512, "route_reflector": true, "sessions": 3, "sessions_up": 2})
        );
        assert_eq!(serde_json::from_value::<NodeRecord>(v).unwrap(), bgp);
        let plain: NodeBgp = serde_json::from_value(serde_json::json!({"as": 65001})).unwrap();
        assert_eq!(plain, NodeBgp { asn: 65001, route_reflector: false, sessions: 0, sessions_up: 0 });
    }

    #[test]
    fn node_record_tolerates_unknown_and_missing_optional_fields() {
        let r: NodeRecord = serde_json::from_str(
            r#"{"name":"n","node_ip":"10.0.0.1","subnet":"10.244.0.0/24","backend":"host-gw","future":1}"#,
        )
        .unwrap();
        assert_eq!((r.subnet6, r.vtep_mac, r.expires), (None, None, 0));
        assert_eq!(r.backend, BackendKind::HostGw);
    }

    #[test]
    fn pod_and_namespace_records_match_what_the_lab_writes() {
        let pod: PodRecord = serde_json::from_value(serde_json::json!({
            "namespace": "a", "name": "p1", "node": "node-2", "ips": ["10.244.2.2"],
            "labels": {"app": "web"},
            "ports": [{"name": "serve-80-tcp", "port": 80, "protocol": "TCP"}]
        }))
        .unwrap();
        assert_eq!(pod.ports[0].port, 80);
        assert_eq!(pod.ips, vec!["10.244.2.2".parse::<IpAddr>().unwrap()]);
        let ns: NamespaceRecord = serde_json::from_str(r#"{"name":"a"}"#).unwrap();
        assert!(ns.labels.is_empty());
        let pol = PolicyRecord { namespace: "a".into(), name: "deny".into(), spec: serde_json::json!({}) };
        assert_eq!(serde_json::to_value(&pol).unwrap()["spec"], serde_json::json!({}));
    }

    #[test]
    fn backend_names() {
        for k in [BackendKind::HostGw, BackendKind::Vxlan, BackendKind::Bgp] {
            assert_eq!(k.as_str().parse::<BackendKind>().unwrap(), k);
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert!("udp".parse::<BackendKind>().is_err());
    }

    #[test]
    fn decode_names_the_key() {
        let e = Entry {
            key: "/twill/nodes/x".into(),
            value: b"{".to_vec(),
            version: 1,
            mod_revision: 1,
            lease: None,
        };
        let err = decode::<NodeRecord>(&e).unwrap_err();
        assert!(err.to_string().starts_with("decode /twill/nodes/x: "), "{err}");
    }
}
