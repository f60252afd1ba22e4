//! Kubernetes manifests for `twill cluster apply|delete -f` (and the lab's wrappers): one or
//! many YAML or JSON documents of NetworkPolicy, AdminNetworkPolicy,
//! BaselineAdminNetworkPolicy, Namespace, Pod, NetworkAttachmentDefinition
//! and BGPPeer objects (and `List`s of them). Everything is validated first, all or nothing,
//! with errors naming document, object and field — the policy kinds by `twill_policy`,
//! definitions by [`crate::multinet`], BGPPeers by [`crate::bgppeer`]; a policy is then stored
//! with its `spec` as written (the agents validate it again when they read it), a namespace
//! with its labels, a pod as its [`PodMeta`] (labels, annotations, named ports), a definition
//! with its config, a BGPPeer as its record.

use policy::reader::{FieldError, Object as Obj};
use policy::{Object, ParseError};
use serde_json::Value;

use crate::bgppeer::{self, BgpPeerError, BgpPeerRecord};
use crate::multinet::{self, NAD_API_VERSION, NAD_KIND, NetAttachDef};
use crate::record::{AdminPolicyRecord, NamedPort, NamespaceRecord, PodMeta, PolicyRecord};

/// The kinds a manifest may hold, for error messages.
pub const KINDS: &str = "NetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy, Namespace, Pod, \
                         NetworkAttachmentDefinition, BGPPeer and List";

/// One object of a manifest, as the datastore stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Policy(PolicyRecord),
    /// An AdminNetworkPolicy or the BaselineAdminNetworkPolicy.
    AdminPolicy(policy::Tier, AdminPolicyRecord),
    Namespace(NamespaceRecord),
    Pod(PodMeta),
    BgpPeer(BgpPeerRecord),
    NetAttachDef(NetAttachDef),
}

impl Manifest {
    /// `networkpolicy x/deny`, `namespace x`, `pod x/web`, `network-attachment-definition x/data`.
    pub fn describe(&self) -> String {
        match self {
            Manifest::Policy(p) => format!("networkpolicy {}/{}", p.namespace, p.name),
            Manifest::AdminPolicy(tier, p) => format!("{} {}", tier.kind().to_lowercase(), p.name),
            Manifest::Namespace(ns) => format!("namespace {}", ns.name),
            Manifest::Pod(p) => format!("pod {}/{}", p.namespace, p.name),
            Manifest::BgpPeer(p) => format!("bgppeer {}", p.name),
            Manifest::NetAttachDef(n) => format!("network-attachment-definition {}", n.qualified()),
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
    Parse(#[from] ParseError),
    #[error("document {document}: {source}")]
    BgpPeer { document: usize, source: BgpPeerError },
}

/// The objects of a YAML (or JSON) stream, in order.
pub fn parse_manifests(text: &str) -> Result<Vec<Manifest>, ManifestError> {
    let mut out = Vec::new();
    for doc in policy::documents(text) {
        let (document, value) = doc?;
        collect(&value, document, &mut out)?;
    }
    Ok(out)
}

/// The objects of one document; `List`s are opened here, so that a list may mix the policy
/// kinds with definitions.
fn collect(value: &Value, document: usize, out: &mut Vec<Manifest>) -> Result<(), ManifestError> {
    let invalid = |object: &str, e: FieldError| ParseError::Invalid {
        document,
        object: object.to_string(),
        field: e.field,
        message: e.message,
    };
    let root = Obj::root(value).map_err(|e| invalid("manifest", e))?;
    let kind = root.require("kind").and_then(|k| k.str()).map_err(|e| invalid("manifest", e))?;
    match kind {
        "List" => {
            api_version(&root, "v1").map_err(|e| invalid(kind, e))?;
            let items = root.require("items").and_then(|i| i.items()).map_err(|e| invalid(kind, e))?;
            items.iter().try_for_each(|item| collect(item.value, document, out))
        }
        NAD_KIND => {
            api_version(&root, NAD_API_VERSION).map_err(|e| invalid(kind, e))?;
            let name = |root: &Obj| policy::metadata(root, true).map(|(ns, n)| format!("{kind} {ns}/{n}"));
            let object = name(&root).map_err(|e| invalid(kind, e))?;
            let nad = multinet::decode_definition(&root).map_err(|e| invalid(&object, e))?;
            out.push(Manifest::NetAttachDef(nad));
            Ok(())
        }
        bgppeer::KIND => {
            let record = bgppeer::from_manifest(value)
                .map_err(|source| ManifestError::BgpPeer { document, source })?;
            out.push(Manifest::BgpPeer(record));
            Ok(())
        }
        "NetworkPolicy" | "AdminNetworkPolicy" | "BaselineAdminNetworkPolicy" | "Namespace" | "Pod" => {
            let objects = policy::parse_document(value, document)?;
            out.extend(objects.into_iter().map(|o| record(o, value)));
            Ok(())
        }
        other => Err(ParseError::UnsupportedKind { document, kind: other.into(), supported: KINDS }.into()),
    }
}

fn api_version(root: &Obj, want: &str) -> Result<(), FieldError> {
    let at = root.require("apiVersion")?;
    let api = at.str()?;
    if api != want {
        let kind = root.get("kind").and_then(|k| k.value.as_str().map(str::to_string)).unwrap_or_default();
        return Err(at.err(format!("{api:?} is not supported for {kind}: use {want:?}")));
    }
    Ok(())
}

fn record(object: Object, raw: &Value) -> Manifest {
    match object {
        Object::NetworkPolicy(p) => Manifest::Policy(PolicyRecord {
            namespace: p.namespace,
            name: p.name,
            // An absent spec is an empty one (select every pod of the namespace, deny ingress).
            spec: raw.get("spec").cloned().unwrap_or_else(|| Value::Object(Default::default())),
        }),
        Object::AdminPolicy(p) => Manifest::AdminPolicy(
            p.tier,
            // The decoder requires a spec.
            AdminPolicyRecord { name: p.name, spec: raw.get("spec").cloned().unwrap_or_default() },
        ),
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
        assert!(e.contains("unsupported kind \"Deployment\""), "{e}");
        assert!(e.contains("NetworkAttachmentDefinition"), "{e}");
        assert!(e.contains("BGPPeer"), "{e}");
    }

    #[test]
    fn admin_tiers_are_cluster_scoped_records() {
        let text = "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: deny-y}\nspec: {priority: 3, subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {}}]}]}\n---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: {name: default}\nspec: {subject: {namespaces: {}}}\n";
        let m = parse_manifests(text).unwrap();
        let names: Vec<String> = m.iter().map(Manifest::describe).collect();
        assert_eq!(names, ["adminnetworkpolicy deny-y", "baselineadminnetworkpolicy default"]);
        let Manifest::AdminPolicy(tier, p) = &m[0] else { panic!() };
        assert_eq!(p.spec["priority"], json!(3));
        // What is stored reads back as the same policy.
        policy::parse_admin_spec(*tier, &p.name, &p.spec).unwrap();
        let e = parse_manifests(&text.replace("priority: 3", "priority: -1")).unwrap_err().to_string();
        assert!(
            e.contains("document 1: AdminNetworkPolicy deny-y: spec.priority: -1 must be between 0 and 1000"),
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

    const NADS: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: k8s.cni.cncf.io/v1
  kind: NetworkAttachmentDefinition
  metadata: {name: data, namespace: x}
  spec:
    config: '{"cniVersion": "1.0.0", "type": "macvlan", "master": "data0",
              "ipam": {"type": "host-local", "subnet": "10.10.0.0/16"}}'
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: deny, namespace: x}
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: from-file}
"#;

    #[test]
    fn definitions_are_read_beside_the_policy_kinds() {
        let m = parse_manifests(NADS).unwrap();
        let names: Vec<String> = m.iter().map(Manifest::describe).collect();
        assert_eq!(
            names,
            [
                "network-attachment-definition x/data",
                "networkpolicy x/deny",
                "network-attachment-definition default/from-file"
            ]
        );
        let Manifest::NetAttachDef(data) = &m[0] else { panic!() };
        assert!(data.config.contains("\"master\": \"data0\""), "{}", data.config);
        let Manifest::NetAttachDef(file) = &m[2] else { panic!() };
        assert!(file.config.is_empty());
    }

    #[test]
    fn bad_definitions_name_document_object_and_field() {
        let bad = |text: &str| parse_manifests(text).unwrap_err().to_string();
        let head = "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata: {name: d, namespace: x}\n";
        let e = bad(&format!("{head}spec: {{config: '{{\"type\": '}}\n"));
        assert!(e.contains("document 1: NetworkAttachmentDefinition x/d: spec.config: not JSON"), "{e}");
        let e = bad(&format!("{head}spec: {{config: '{{\"cniVersion\": \"1.0.0\"}}'}}\n"));
        assert!(e.contains("NetworkAttachmentDefinition x/d: spec.config: "), "{e}");
        let e = bad(&format!("{head}spec: {{confg: x}}\n"));
        assert!(e.contains("spec.confg: unknown field"), "{e}");
        let e = bad("apiVersion: v1\nkind: NetworkAttachmentDefinition\nmetadata: {name: d}\n");
        assert!(e.contains("apiVersion: \"v1\" is not supported for NetworkAttachmentDefinition"), "{e}");
        let e = bad(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata: {name: Bad_Name}\n",
        );
        assert!(e.contains("document 2: NetworkAttachmentDefinition: metadata.name"), "{e}");
    }
}
