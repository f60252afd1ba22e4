//! Kubernetes manifests for `twill lab apply|delete -f`: one or many YAML documents of
//! NetworkPolicy, Namespace and BGPPeer objects (and `List`s of them). Everything is
//! validated first — policies and namespaces by `twill_policy`, BGPPeers by
//! `twill_agent::bgppeer` — all or nothing, with errors naming document, object and
//! field; a policy is then stored with its `spec` as written (the agents validate it again
//! when they read it), a namespace with its labels, a BGPPeer as its record.

use agent::bgppeer::{self as bgppeer, BgpPeerRecord};
use agent::{NamespaceRecord, PolicyRecord};
use anyhow::{Context, Result, anyhow};
use policy::{Object, ParseError, parse_value};
use serde::Deserialize;
use serde_json::Value;

/// One object of a manifest, as the datastore stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Policy(PolicyRecord),
    Namespace(NamespaceRecord),
    BgpPeer(BgpPeerRecord),
}

impl Manifest {
    /// `networkpolicy x/deny`, `namespace x`.
    pub fn describe(&self) -> String {
        match self {
            Manifest::Policy(p) => format!("networkpolicy {}/{}", p.namespace, p.name),
            Manifest::Namespace(ns) => format!("namespace {}", ns.name),
            Manifest::BgpPeer(p) => format!("bgppeer {}", p.name),
        }
    }
}

/// The objects of a YAML stream, in order.
pub fn parse_manifests(text: &str) -> Result<Vec<Manifest>> {
    raw_objects(text)?.iter().map(|(document, value)| decode(*document, value)).collect()
}

/// One object of document `document`.
fn decode(document: usize, value: &Value) -> Result<Manifest> {
    if value.get("kind").and_then(Value::as_str) == Some(bgppeer::KIND) {
        let record = bgppeer::from_manifest(value).map_err(|e| anyhow!("document {document}: {e}"))?;
        return Ok(Manifest::BgpPeer(record));
    }
    let object = parse_value(value).map_err(|e| numbered(e, document))?.into_iter().next();
    object.map(|o| record(o, value)).with_context(|| format!("document {document}: no object"))
}

/// A validation error of one object, with the number of the document it came from.
fn numbered(e: ParseError, document: usize) -> anyhow::Error {
    match e {
        ParseError::Invalid { object, field, message, .. } => {
            anyhow!("document {document}: {object}: {field}: {message}")
        }
        ParseError::UnsupportedKind { kind, .. } => anyhow!(
            "document {document}: unsupported kind {kind:?}: twill lab apply reads NetworkPolicy, Namespace and BGPPeer"
        ),
        ParseError::Yaml { source, .. } => anyhow!("document {document}: invalid YAML: {source}"),
    }
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
    }
}

/// Every object of every non-empty document with the document's number (from 1), `List`s
/// flattened.
fn raw_objects(text: &str) -> Result<Vec<(usize, Value)>> {
    let mut out = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(doc).with_context(|| format!("document {}: invalid YAML", i + 1))?;
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
pub fn read_manifests(path: &str) -> Result<Vec<Manifest>> {
    let text = match path {
        "-" => std::io::read_to_string(std::io::stdin()).context("read standard input")?,
        _ => std::fs::read_to_string(path).with_context(|| format!("read {path}"))?,
    };
    parse_manifests(&text).with_context(|| format!("{path}: not applied (nothing was changed)"))
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
        let e = format!("{:#}", parse_manifests(bad).unwrap_err());
        assert!(e.contains("document 2: NetworkPolicy x/p: spec.ingress[0].ports[0].endPort"), "{e}");
        let e = format!("{:#}", parse_manifests("apiVersion: apps/v1\nkind: Deployment\n").unwrap_err());
        assert!(e.contains("unsupported kind \"Deployment\""), "{e}");
    }

    #[test]
    fn bgp_peers_are_read_beside_policies() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: twill.dev/v1alpha1\nkind: BGPPeer\nmetadata: {name: tor}\nspec: {peerIP: 10.100.1.1, asNumber: 65000, nodeSelector: {matchLabels: {twill.dev/rack: rack1}}}\n";
        let m = parse_manifests(text).unwrap();
        assert_eq!(m.iter().map(Manifest::describe).collect::<Vec<_>>(), ["namespace a", "bgppeer tor"]);
        let Manifest::BgpPeer(p) = &m[1] else { panic!() };
        assert_eq!(p.spec.as_number, 65000);
        let bad = text.replace("65000", "0");
        let e = format!("{:#}", parse_manifests(&bad).unwrap_err());
        assert!(e.contains("document 2: BGPPeer tor: spec.asNumber: 0 is reserved"), "{e}");
    }
}
