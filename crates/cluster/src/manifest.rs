//! Kubernetes manifests for `twill cluster apply|delete -f` (and the lab's wrappers): one or
//! many YAML or JSON documents of NetworkPolicy, Namespace, Pod and BGPPeer objects (and
//! `List`s of them). Everything is validated first — by `twill_policy` for the Kubernetes
//! kinds, by [`crate::bgppeer`] for BGPPeers — all or nothing, with errors naming document,
//! object and field; a policy is then stored with its `spec` as written (the agents validate
//! it again when they read it), a namespace with its labels, a pod as its [`PodMeta`]
//! (labels, annotations, named ports), a BGPPeer as its record.

use policy::{Object, ParseError, parse_value};
use serde::Deserialize;
use serde_json::Value;

use crate::bgppeer::{self, BgpPeerError, BgpPeerRecord};
use crate::record::{NamedPort, NamespaceRecord, PodMeta, PolicyRecord};

/// The kinds a manifest may hold.
const SUPPORTED: &str = "NetworkPolicy, Namespace, Pod, BGPPeer and List";

/// One object of a manifest, as the datastore stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Policy(PolicyRecord),
    Namespace(NamespaceRecord),
    Pod(PodMeta),
    BgpPeer(BgpPeerRecord),
}

impl Manifest {
    /// `networkpolicy x/deny`, `namespace x`, `pod x/web`.
    pub fn describe(&self) -> String {
        match self {
            Manifest::Policy(p) => format!("networkpolicy {}/{}", p.namespace, p.name),
            Manifest::Namespace(ns) => format!("namespace {}", ns.name),
            Manifest::Pod(p) => format!("pod {}/{}", p.namespace, p.name),
            Manifest::BgpPeer(p) => format!("bgppeer {}", p.name),
        }
    }
}

/// Why a manifest was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: not applied (nothing was changed): {source}")]
    Invalid { path: String, source: Box<ManifestError> },
    #[error(transparent)]
    Parse(#[from] policy::ParseError),
    #[error("document {document}: {source}")]
    Yaml { document: usize, source: serde_norway::Error },
    #[error("document {document}: {source}")]
    BgpPeer { document: usize, source: BgpPeerError },
    #[error("document {document}: no object")]
    Empty { document: usize },
}

/// The objects of a YAML (or JSON) stream, in order.
pub fn parse_manifests(text: &str) -> Result<Vec<Manifest>, ManifestError> {
    raw_objects(text)?.iter().map(|(document, value)| decode(*document, value)).collect()
}

/// One object of document `document`.
fn decode(document: usize, value: &Value) -> Result<Manifest, ManifestError> {
    if value.get("kind").and_then(Value::as_str) == Some(bgppeer::KIND) {
        let record =
            bgppeer::from_manifest(value).map_err(|source| ManifestError::BgpPeer { document, source })?;
        return Ok(Manifest::BgpPeer(record));
    }
    let object = parse_value(value).map_err(|e| numbered(e, document))?.into_iter().next();
    object.map(|o| record(o, value)).ok_or(ManifestError::Empty { document })
}

/// A Kubernetes object's error, with the number of the document it came from.
fn numbered(e: ParseError, document: usize) -> ManifestError {
    ManifestError::Parse(match e {
        ParseError::Invalid { object, field, message, .. } => {
            ParseError::Invalid { document, object, field, message }
        }
        ParseError::UnsupportedKind { kind, .. } => {
            ParseError::UnsupportedKind { document, kind, supported: SUPPORTED }
        }
        ParseError::Yaml { source, .. } => ParseError::Yaml { document, source },
    })
}

fn record(object: Object, raw: &Value) -> Manifest {
    match object {
        Object::NetworkPolicy(p) => Manifest::Policy(PolicyRecord {
            namespace: p.namespace,
            name: p.name,
            // An absent spec is an empty one (select every pod of the namespace, deny ingress).
            spec: raw.get("spec").cloned().unwrap_or_else(|| Value::Object(Default::default())),
        }),
        Object::Namespace(ns) => Manifest::Namespace(NamespaceRecord { name: ns.name, labels: ns.labels }),
        Object::Pod(p) => Manifest::Pod(PodMeta {
            namespace: p.namespace,
            name: p.name,
            labels: p.labels,
            annotations: p.annotations,
            ports: p
                .ports
                .into_iter()
                .map(|n| NamedPort { name: n.name, port: n.port, protocol: n.protocol.as_k8s().to_string() })
                .collect(),
        }),
    }
}

/// Every object of every non-empty document with the document's number (from 1), `List`s
/// flattened.
fn raw_objects(text: &str) -> Result<Vec<(usize, Value)>, ManifestError> {
    let mut out = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let value =
            Value::deserialize(doc).map_err(|source| ManifestError::Yaml { document: i + 1, source })?;
        flatten(i + 1, value, &mut out);
    }
    Ok(out)
}

fn flatten(document: usize, value: Value, out: &mut Vec<(usize, Value)>) {
    match value {
        Value::Null => {}
        Value::Object(mut map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
            if let Some(Value::Array(items)) = map.remove("items") {
                items.into_iter().for_each(|item| flatten(document, item, out));
            }
        }
        other => out.push((document, other)),
    }
}

/// Reads a manifest file (`-` for standard input).
pub fn read_manifests(path: &str) -> Result<Vec<Manifest>, ManifestError> {
    let read = match path {
        "-" => std::io::read_to_string(std::io::stdin()),
        _ => std::fs::read_to_string(path),
    };
    let text = read.map_err(|source| ManifestError::Read { path: path.to_string(), source })?;
    parse_manifests(&text).map_err(|e| ManifestError::Invalid { path: path.to_string(), source: Box::new(e) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MANIFEST: &str = "
apiVersion: v1
kind: Namespace
metadata: {name: y, labels: {team: blue}}
---
---
apiVersion: v1
kind: List
items:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: deny, namespace: x}
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: web}
  spec:
    podSelector: {matchLabels: {pod: a}}
    ingress: [{ports: [{port: serve-80-tcp}, {protocol: UDP, port: 80, endPort: 81}]}]
";

    #[test]
    fn documents_and_lists_become_records_in_order() {
        let m = parse_manifests(MANIFEST).unwrap();
        let names: Vec<String> = m.iter().map(Manifest::describe).collect();
        assert_eq!(names, ["namespace y", "networkpolicy x/deny", "networkpolicy default/web"]);
        let Manifest::Namespace(ns) = &m[0] else { panic!() };
        assert_eq!(ns.labels["team"], "blue");
        assert_eq!(ns.labels["kubernetes.io/metadata.name"], "y");
        let Manifest::Policy(deny) = &m[1] else { panic!() };
        assert_eq!(deny.spec, json!({}));
        let Manifest::Policy(web) = &m[2] else { panic!() };
        assert_eq!(web.spec["ingress"][0]["ports"][1], json!({"protocol": "UDP", "port": 80, "endPort": 81}));
        // What is stored reads back as the same policy.
        policy::parse_policy_spec(&web.namespace, &web.name, &web.spec).unwrap();
    }

    #[test]
    fn invalid_manifests_name_document_and_field() {
        let bad = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {ingress: [{ports: [{port: 90, endPort: 80}]}]}\n";
        let e = parse_manifests(bad).unwrap_err().to_string();
        assert!(e.contains("document 2: NetworkPolicy x/p: spec.ingress[0].ports[0].endPort"), "{e}");
        let e = parse_manifests("apiVersion: apps/v1\nkind: Deployment\n").unwrap_err().to_string();
        assert!(
            e.contains(
                "unsupported kind \"Deployment\": twill reads NetworkPolicy, Namespace, Pod, BGPPeer and List"
            ),
            "{e}"
        );
    }

    #[test]
    fn bgp_peers_are_read_beside_the_kubernetes_kinds() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: twill.dev/v1alpha1\nkind: BGPPeer\nmetadata: {name: tor}\nspec: {peerIP: 10.100.1.1, asNumber: 65000, nodeSelector: {matchLabels: {twill.dev/rack: rack1}}}\n";
        let m = parse_manifests(text).unwrap();
        assert_eq!(m.iter().map(Manifest::describe).collect::<Vec<_>>(), ["namespace a", "bgppeer tor"]);
        let Manifest::BgpPeer(p) = &m[1] else { panic!() };
        assert_eq!(p.spec.as_number, 65000);
        let e = parse_manifests(&text.replace("65000", "0")).unwrap_err().to_string();
        assert!(e.contains("document 2: BGPPeer tor: spec.asNumber: 0 is reserved"), "{e}");
    }
}
