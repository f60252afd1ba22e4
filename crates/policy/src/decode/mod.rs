//! Kubernetes manifests in, validated objects out: one or many YAML documents (`---`), or a
//! JSON value as stored in a datastore. Kinds: NetworkPolicy (networking.k8s.io/v1),
//! AdminNetworkPolicy and BaselineAdminNetworkPolicy (policy.networking.k8s.io/v1alpha1),
//! Namespace (v1), Pod (v1: its labels, annotations and named container ports — what policy
//! and multi-network attachment read of a pod), and List (v1) of those. Every error names the
//! document, the object and the field.

mod admin;
mod pod;
mod policy;
pub mod reader;

use serde::Deserialize;
use serde_json::Value;

use crate::admin::{AdminPolicy, BASELINE_NAME, Tier};
use crate::model::{Namespace, NetworkPolicy};
use crate::names;
pub use pod::PodObject;
use reader::{FieldError, Object as Obj};

/// The kinds [`parse_yaml`] reads, for error messages.
pub const KINDS: &str =
    "NetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy, Namespace, Pod and List";

/// The API group and version of the admin tiers.
pub const ADMIN_API_VERSION: &str = "policy.networking.k8s.io/v1alpha1";

/// A decoded manifest object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    NetworkPolicy(NetworkPolicy),
    /// An AdminNetworkPolicy or the BaselineAdminNetworkPolicy.
    AdminPolicy(AdminPolicy),
    Namespace(Namespace),
    Pod(PodObject),
}

/// Why a manifest was rejected. `document` counts from 1.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("document {document}: invalid YAML: {source}")]
    Yaml { document: usize, source: serde_norway::Error },
    #[error("document {document}: unsupported kind {kind:?}: twill reads {supported}")]
    UnsupportedKind { document: usize, kind: String, supported: &'static str },
    #[error("document {document}: {object}: {field}: {message}")]
    Invalid { document: usize, object: String, field: String, message: String },
}

/// Every object in a YAML stream; empty documents are skipped. All or nothing.
pub fn parse_yaml(text: &str) -> Result<Vec<Object>, ParseError> {
    let mut out = Vec::new();
    for doc in documents(text) {
        let (document, value) = doc?;
        decode(&value, document, &mut out)?;
    }
    Ok(out)
}

/// The non-empty documents of a YAML (or JSON) stream with their numbers (from 1), read one
/// at a time: a reader stops at the first document it refuses.
pub fn documents(text: &str) -> impl Iterator<Item = Result<(usize, Value), ParseError>> + '_ {
    serde_norway::Deserializer::from_str(text).enumerate().filter_map(|(i, doc)| {
        let document = i + 1;
        match Value::deserialize(doc) {
            Ok(value) if value.is_null() => None,
            Ok(value) => Some(Ok((document, value))),
            Err(source) => Some(Err(ParseError::Yaml { document, source })),
        }
    })
}

/// The objects of one JSON (or already parsed YAML) document.
pub fn parse_value(value: &Value) -> Result<Vec<Object>, ParseError> {
    parse_document(value, 1)
}

/// The objects of document number `document` of a stream (errors name that number): for
/// readers of more kinds than these, which pick their own documents out of a stream.
pub fn parse_document(value: &Value, document: usize) -> Result<Vec<Object>, ParseError> {
    let mut out = Vec::new();
    decode(value, document, &mut out)?;
    Ok(out)
}

/// A policy stored as namespace, name and `spec` (the agent's `/twill/policies/NS/NAME`
/// records), validated like a manifest.
pub fn parse_policy_spec(namespace: &str, name: &str, spec: &Value) -> Result<NetworkPolicy, ParseError> {
    let manifest = serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"namespace": namespace, "name": name},
        "spec": spec,
    });
    let mut out = Vec::new();
    decode(&manifest, 1, &mut out)?;
    match out.pop() {
        Some(Object::NetworkPolicy(p)) => Ok(p),
        // decode of a NetworkPolicy manifest yields exactly that policy.
        _ => Err(ParseError::UnsupportedKind { document: 1, kind: "NetworkPolicy".into(), supported: KINDS }),
    }
}

/// An AdminNetworkPolicy or BaselineAdminNetworkPolicy stored as name and `spec` (the
/// agent's `/twill/adminpolicies/NAME` and `/twill/baselinepolicies/NAME` records).
pub fn parse_admin_spec(tier: Tier, name: &str, spec: &Value) -> Result<AdminPolicy, ParseError> {
    let manifest = serde_json::json!({
        "apiVersion": ADMIN_API_VERSION,
        "kind": tier.kind(),
        "metadata": {"name": name},
        "spec": spec,
    });
    let mut out = Vec::new();
    decode(&manifest, 1, &mut out)?;
    match out.pop() {
        Some(Object::AdminPolicy(p)) => Ok(p),
        // decode of an admin manifest yields exactly that policy.
        _ => Err(ParseError::UnsupportedKind { document: 1, kind: tier.kind().into(), supported: KINDS }),
    }
}

fn decode(value: &Value, document: usize, out: &mut Vec<Object>) -> Result<(), ParseError> {
    let invalid = |object: &str, e: FieldError| ParseError::Invalid {
        document,
        object: object.to_string(),
        field: e.field,
        message: e.message,
    };
    let root = Obj::root(value).map_err(|e| invalid("manifest", e))?;
    let kind = root.require("kind").and_then(|k| k.str()).map_err(|e| invalid("manifest", e))?;
    let want_api = match kind {
        "NetworkPolicy" => "networking.k8s.io/v1",
        "AdminNetworkPolicy" | "BaselineAdminNetworkPolicy" => ADMIN_API_VERSION,
        "Namespace" | "Pod" | "List" => "v1",
        other => return Err(ParseError::UnsupportedKind { document, kind: other.into(), supported: KINDS }),
    };
    let api = root.require("apiVersion").and_then(|a| a.str()).map_err(|e| invalid(kind, e))?;
    if api != want_api {
        let at = root.require("apiVersion").map_err(|e| invalid(kind, e))?;
        return Err(invalid(kind, at.err(format!("{api:?} is not supported for {kind}: use {want_api:?}"))));
    }
    match kind {
        "List" => {
            let items = root.require("items").and_then(|i| i.items()).map_err(|e| invalid(kind, e))?;
            items.iter().try_for_each(|item| decode(item.value, document, out))
        }
        "Namespace" => {
            let (_, name) = metadata(&root, false).map_err(|e| invalid(kind, e))?;
            let object = format!("Namespace {name}");
            out.push(Object::Namespace(namespace(&root, &name).map_err(|e| invalid(&object, e))?));
            Ok(())
        }
        "AdminNetworkPolicy" | "BaselineAdminNetworkPolicy" => {
            let tier = if kind == "AdminNetworkPolicy" { Tier::Admin } else { Tier::Baseline };
            let name = cluster_name(&root, tier).map_err(|e| invalid(kind, e))?;
            root.allow_only(&["apiVersion", "kind", "metadata", "spec", "status"])
                .map_err(|e| invalid(kind, e))?;
            let object = format!("{kind} {name}");
            let p = admin::admin_policy(&root, tier, &name).map_err(|e| invalid(&object, e))?;
            out.push(Object::AdminPolicy(p));
            Ok(())
        }
        "Pod" => {
            let (ns, name) = metadata(&root, true).map_err(|e| invalid(kind, e))?;
            let object = format!("Pod {ns}/{name}");
            out.push(Object::Pod(pod::pod(&root, &ns, &name).map_err(|e| invalid(&object, e))?));
            Ok(())
        }
        _ => {
            let (ns, name) = metadata(&root, true).map_err(|e| invalid(kind, e))?;
            root.allow_only(&["apiVersion", "kind", "metadata", "spec"]).map_err(|e| invalid(kind, e))?;
            let object = format!("NetworkPolicy {ns}/{name}");
            let p = policy::network_policy(&root, &ns, &name).map_err(|e| invalid(&object, e))?;
            out.push(Object::NetworkPolicy(p));
            Ok(())
        }
    }
}

/// `metadata.namespace` (`default` when absent, as with kubectl's default context) and
/// `metadata.name`.
pub fn metadata(root: &Obj, namespaced: bool) -> Result<(String, String), FieldError> {
    let meta = root.require("metadata")?.object()?;
    let name_at = meta.require("name")?;
    let name = name_at.str()?;
    let check = if namespaced { names::dns_subdomain(name) } else { names::dns_label(name) };
    check.map_err(|m| name_at.err(m))?;
    let ns = match meta.get("namespace") {
        Some(at) if namespaced => {
            let ns = at.str()?;
            names::dns_label(ns).map_err(|m| at.err(m))?;
            ns.to_string()
        }
        _ => "default".to_string(),
    };
    Ok((ns, name.to_string()))
}

/// `metadata.name` of a cluster-scoped admin policy (a `metadata.namespace` is ignored, as
/// the API server does for cluster-scoped kinds); the baseline must be named `default`.
fn cluster_name(root: &Obj, tier: Tier) -> Result<String, FieldError> {
    let meta = root.require("metadata")?.object()?;
    let at = meta.require("name")?;
    let name = at.str()?;
    names::dns_subdomain(name).map_err(|m| at.err(m))?;
    if tier == Tier::Baseline && name != BASELINE_NAME {
        return Err(at.err(format!(
            "must be {BASELINE_NAME:?}: a cluster has one BaselineAdminNetworkPolicy, named {BASELINE_NAME:?}"
        )));
    }
    Ok(name.to_string())
}

fn namespace(root: &Obj, name: &str) -> Result<Namespace, FieldError> {
    Ok(Namespace::new(name, labels(root)?))
}

/// `metadata.labels`, every key and value checked as the API server does.
pub fn labels(root: &Obj) -> Result<crate::Labels, FieldError> {
    let meta = root.require("metadata")?.object()?;
    let labels = meta.get("labels").map(|l| l.string_map()).transpose()?.unwrap_or_default();
    for (k, v) in &labels {
        let field = || format!("{}.labels.{k}", meta.path());
        names::label_key(k).map_err(|message| FieldError { field: field(), message })?;
        names::label_value(v).map_err(|message| FieldError { field: field(), message })?;
    }
    Ok(labels)
}

#[cfg(test)]
mod admin_tests;
#[cfg(test)]
mod tests;
