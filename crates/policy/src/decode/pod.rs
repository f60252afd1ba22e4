//! The parts of a Pod manifest (v1) twill reads: `metadata.labels` and `metadata.annotations`,
//! and the named ports of `spec.containers[].ports` (what a NetworkPolicy's named port
//! refers to). Everything else in a Pod is the kubelet's business and is ignored.

use std::collections::BTreeMap;

use super::reader::{FieldError, Object};
use crate::Labels;
use crate::model::{NamedPort, Protocol};
use crate::names;

/// A pod as an operator describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodObject {
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub ports: Vec<NamedPort>,
}

pub fn pod(root: &Object, namespace: &str, name: &str) -> Result<PodObject, FieldError> {
    let meta = root.require("metadata")?.object()?;
    let annotations = meta.get("annotations").map(|a| a.string_map()).transpose()?.unwrap_or_default();
    for k in annotations.keys() {
        names::label_key(k)
            .map_err(|message| FieldError { field: format!("metadata.annotations.{k}"), message })?;
    }
    let mut ports = Vec::new();
    let spec = root.get("spec").map(|s| s.object()).transpose()?;
    if let Some(containers) = spec.and_then(|s| s.get("containers")) {
        for c in containers.items()? {
            named_ports(&c.object()?, &mut ports)?;
        }
    }
    Ok(PodObject {
        namespace: namespace.to_string(),
        name: name.to_string(),
        labels: super::labels(root)?,
        annotations: annotations.into_iter().collect(),
        ports,
    })
}

/// The container's ports that have a name; names must be unique within the pod.
fn named_ports(container: &Object, out: &mut Vec<NamedPort>) -> Result<(), FieldError> {
    let Some(ports) = container.get("ports") else { return Ok(()) };
    for at in ports.items()? {
        let port = at.object()?;
        let Some(name_at) = port.get("name") else { continue };
        let name = name_at.str()?;
        names::port_name(name).map_err(|m| name_at.err(m))?;
        if out.iter().any(|p| p.name == name) {
            return Err(name_at.err(format!("duplicate port name {name:?}")));
        }
        let number = port.require("containerPort")?.int_in(1, 65535)?;
        let protocol = match port.get("protocol") {
            None => Protocol::Tcp,
            Some(p) => {
                let text = p.str()?;
                Protocol::parse(text).ok_or_else(|| p.err(format!("{text:?} must be TCP, UDP or SCTP")))?
            }
        };
        out.push(NamedPort { name: name.to_string(), port: u16::try_from(number).unwrap_or(0), protocol });
    }
    Ok(())
}
