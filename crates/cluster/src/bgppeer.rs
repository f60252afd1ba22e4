//! BGPPeer: an explicit BGP neighbour of the cluster's nodes (a top-of-rack router, a route
//! server, a host outside the cluster), stored at `/twill/bgppeers/NAME`.
//!
//! ```yaml
//! apiVersion: twill.dev/v1alpha1
//! kind: BGPPeer
//! metadata: {name: rack1-tor}
//! spec:
//!   peerIP: 10.100.1.1          # the neighbour's address
//!   asNumber: 65000             # its AS; the cluster's own AS makes it iBGP
//!   nodeSelector:               # optional: the nodes that peer with it (default: all)
//!     matchLabels: {twill.dev/rack: rack1}
//!   password: s3cret            # optional: TCP MD5 signature key (RFC 2385)
//! ```
//!
//! Everything about the object is here — its record, its key, decoding a manifest,
//! validation and which nodes it selects — so that it can move with the other cluster
//! objects without touching the BGP backend.

use std::collections::BTreeMap;
use std::net::IpAddr;

use policy::{LabelSelector, Labels, Operator, Requirement};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::layout::{BGPPEERS, bgppeer_key};

pub const API_VERSION: &str = "twill.dev/v1alpha1";
pub const KIND: &str = "BGPPeer";
/// The longest TCP MD5 key Linux takes (`TCP_MD5SIG_MAXKEYLEN`).
pub const MAX_PASSWORD: usize = 80;

/// The stored record; `spec` is the manifest's spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpPeerRecord {
    pub name: String,
    pub spec: BgpPeerSpec,
}

/// The manifest's `spec`, field for field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BgpPeerSpec {
    #[serde(rename = "peerIP")]
    pub peer_ip: IpAddr,
    pub as_number: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<SelectorSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// A Kubernetes label selector as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SelectorSpec {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<ExpressionSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpressionSpec {
    pub key: String,
    pub operator: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// A validated BGPPeer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpPeer {
    pub name: String,
    pub peer_ip: IpAddr,
    pub asn: u32,
    /// `None`: every node.
    pub node_selector: Option<LabelSelector>,
    pub password: Option<String>,
}

/// The cluster's valid BGPPeers and what was wrong with the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BgpPeers {
    pub peers: Vec<BgpPeer>,
    pub problems: Vec<String>,
}

/// Why a BGPPeer is invalid: the field (from `spec`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("BGPPeer {name}: {field}: {message}")]
pub struct BgpPeerError {
    pub name: String,
    pub field: String,
    pub message: String,
}

/// An AS number a session can use: not 0, not AS_TRANS (23456, RFC 6793), not the last
/// 16-bit and 32-bit numbers (reserved, RFC 7300).
pub fn check_asn(asn: u32) -> Result<(), String> {
    match asn {
        0 | 23456 | 65535 | u32::MAX => {
            Err(format!("{asn} is reserved (0, 23456, 65535 and 4294967295 are)"))
        }
        _ => Ok(()),
    }
}

impl BgpPeerRecord {
    /// Checks the record and turns it into a [`BgpPeer`].
    pub fn validate(&self) -> Result<BgpPeer, BgpPeerError> {
        let err = |field: &str, message: String| BgpPeerError {
            name: self.name.clone(),
            field: field.into(),
            message,
        };
        crate::layout::check_name("BGPPeer", &self.name).map_err(|e| err("metadata.name", e.to_string()))?;
        let s = &self.spec;
        check_asn(s.as_number).map_err(|m| err("spec.asNumber", m))?;
        if s.peer_ip.is_unspecified() || s.peer_ip.is_multicast() || s.peer_ip.is_loopback() {
            return Err(err("spec.peerIP", format!("{} is not a unicast address of a neighbour", s.peer_ip)));
        }
        if let Some(p) = &s.password {
            check_password(p).map_err(|m| err("spec.password", m))?;
        }
        let node_selector = s
            .node_selector
            .as_ref()
            .map(|sel| sel.to_selector().map_err(|(field, m)| err(&format!("spec.nodeSelector.{field}"), m)))
            .transpose()?;
        Ok(BgpPeer {
            name: self.name.clone(),
            peer_ip: s.peer_ip,
            asn: s.as_number,
            node_selector,
            password: s.password.clone(),
        })
    }
}

/// Printable ASCII without `"` and `\` (BIRD's strings cannot hold them), 1 to 80 bytes.
fn check_password(p: &str) -> Result<(), String> {
    if p.is_empty() || p.len() > MAX_PASSWORD {
        return Err(format!("must be 1 to {MAX_PASSWORD} characters"));
    }
    if !p.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
        return Err("may contain only printable ASCII other than '\"' and '\\'".into());
    }
    Ok(())
}

impl SelectorSpec {
    /// The selector, validated like the API server validates one; errors name the field.
    pub fn to_selector(&self) -> Result<LabelSelector, (String, String)> {
        let mut match_expressions = Vec::new();
        for (i, e) in self.match_expressions.iter().enumerate() {
            let operator = Operator::parse(&e.operator).ok_or_else(|| {
                (
                    format!("matchExpressions[{i}].operator"),
                    format!(
                        "unsupported value {:?}: supported values: In, NotIn, Exists, DoesNotExist",
                        e.operator
                    ),
                )
            })?;
            match_expressions.push(Requirement { key: e.key.clone(), operator, values: e.values.clone() });
        }
        let sel = LabelSelector { match_labels: self.match_labels.clone(), match_expressions };
        sel.validate().map_err(|e| (e.field, e.message))?;
        Ok(sel)
    }
}

impl BgpPeer {
    /// True when a node with `labels` peers with this neighbour.
    pub fn selects(&self, labels: &Labels) -> bool {
        self.node_selector.as_ref().is_none_or(|s| s.matches(labels))
    }
}

/// One manifest object (`kind: BGPPeer`) as the record to store; errors name the field.
pub fn from_manifest(doc: &Value) -> Result<BgpPeerRecord, BgpPeerError> {
    let name = doc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
    let err =
        |field: &str, message: String| BgpPeerError { name: name.clone(), field: field.into(), message };
    let api = doc.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    if api != API_VERSION {
        return Err(err("apiVersion", format!("{api:?} is not supported: use {API_VERSION}")));
    }
    if doc.get("kind").and_then(Value::as_str) != Some(KIND) {
        return Err(err("kind", format!("must be {KIND}")));
    }
    if let Some(ns) = doc.pointer("/metadata/namespace") {
        return Err(err("metadata.namespace", format!("{ns} given, but BGPPeers belong to no namespace")));
    }
    let spec = doc.get("spec").cloned().ok_or_else(|| err("spec", "required".into()))?;
    let spec: BgpPeerSpec = serde_json::from_value(spec).map_err(|e| err("spec", e.to_string()))?;
    let record = BgpPeerRecord { name: name.clone(), spec };
    record.validate()?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn manifest(spec: Value) -> Value {
        json!({"apiVersion": API_VERSION, "kind": "BGPPeer", "metadata": {"name": "tor"}, "spec": spec})
    }

    #[test]
    fn a_full_manifest_becomes_a_record_and_a_peer() {
        let doc = manifest(json!({
            "peerIP": "10.100.1.1", "asNumber": 65000, "password": "s3cr3t!",
            "nodeSelector": {"matchLabels": {"twill.dev/rack": "rack1"},
                             "matchExpressions": [{"key": "role", "operator": "NotIn", "values": ["edge"]}]}
        }));
        let record = from_manifest(&doc).unwrap();
        assert_eq!(bgppeer_key(&record.name), "/twill/bgppeers/tor");
        // Stored as written, so the record reads back as the same manifest spec.
        assert_eq!(serde_json::to_value(&record.spec).unwrap(), doc["spec"]);
        let peer = record.validate().unwrap();
        assert_eq!((peer.peer_ip.to_string(), peer.asn), ("10.100.1.1".to_string(), 65000));
        let rack1: Labels = [("twill.dev/rack".to_string(), "rack1".to_string())].into();
        assert!(peer.selects(&rack1));
        assert!(!peer.selects(&Labels::new()));
        let mut edge = rack1.clone();
        edge.insert("role".into(), "edge".into());
        assert!(!peer.selects(&edge));
    }

    #[test]
    fn without_a_selector_every_node_peers() {
        let r = from_manifest(&manifest(json!({"peerIP": "fd00:100::254", "asNumber": 65100}))).unwrap();
        let peer = r.validate().unwrap();
        assert!(peer.selects(&Labels::new()));
        assert_eq!(peer.password, None);
    }

    #[test]
    fn bad_manifests_name_the_field() {
        let cases = [
            (json!({"peerIP": "10.0.0.1"}), "spec: missing field `asNumber`"),
            (json!({"peerIP": "10.0.0.1", "asNumber": 0}), "spec.asNumber: 0 is reserved"),
            (json!({"peerIP": "10.0.0.1", "asNumber": 23456}), "spec.asNumber: 23456 is reserved"),
            (json!({"peerIP": "10.0.0.300", "asNumber": 1}), "spec: invalid IP address syntax"),
            (json!({"peerIP": "0.0.0.0", "asNumber": 1}), "spec.peerIP: 0.0.0.0 is not a unicast"),
            (json!({"peerIP": "10.0.0.1", "asNumber": 1, "peerIp": "x"}), "spec: unknown field `peerIp`"),
            (
                json!({"peerIP": "10.0.0.1", "asNumber": 1, "password": "a\"b"}),
                "spec.password: may contain only",
            ),
            (
                json!({"peerIP": "10.0.0.1", "asNumber": 1, "password": "x".repeat(81)}),
                "spec.password: must be 1 to 80",
            ),
            (
                json!({"peerIP": "10.0.0.1", "asNumber": 1, "nodeSelector": {"matchExpressions": [{"key": "a", "operator": "Is"}]}}),
                "spec.nodeSelector.matchExpressions[0].operator: unsupported value \"Is\"",
            ),
            (
                json!({"peerIP": "10.0.0.1", "asNumber": 1, "nodeSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}),
                "spec.nodeSelector.matchExpressions[0].values: must be specified",
            ),
            (
                json!({"peerIP": "10.0.0.1", "asNumber": 1, "nodeSelector": {"matchLabels": {"a b": "c"}}}),
                "spec.nodeSelector.matchLabels.a b",
            ),
        ];
        for (spec, want) in cases {
            let e = from_manifest(&manifest(spec.clone())).unwrap_err().to_string();
            assert!(e.starts_with("BGPPeer tor: ") && e.contains(want), "{spec}: {e}");
        }
        let mut doc = manifest(json!({"peerIP": "10.0.0.1", "asNumber": 1}));
        doc["apiVersion"] = json!("v1");
        assert!(from_manifest(&doc).unwrap_err().to_string().contains("apiVersion: \"v1\" is not supported"));
        doc["apiVersion"] = json!(API_VERSION);
        doc["metadata"] = json!({"name": "Tor"});
        assert!(from_manifest(&doc).unwrap_err().to_string().contains("metadata.name"));
        doc["metadata"] = json!({"name": "tor", "namespace": "default"});
        assert!(from_manifest(&doc).unwrap_err().to_string().contains("belong to no namespace"));
    }

    #[test]
    fn as_numbers() {
        for ok in [1, 64512, 65000, 4_200_000_000] {
            assert!(check_asn(ok).is_ok(), "{ok}");
        }
        for bad in [0, 23456, 65535, u32::MAX] {
            assert!(check_asn(bad).is_err(), "{bad}");
        }
    }
}
