//! Multi-network objects, as the Network Plumbing Working Group's specification defines them
//! and Multus uses them:
//! - [`NetAttachDef`]: a `k8s.cni.cncf.io/v1` NetworkAttachmentDefinition — a named CNI
//!   configuration (a conf or a conflist, as a JSON string in `spec.config`) that pods select
//!   with the `k8s.v1.cni.cncf.io/networks` annotation. An empty config means "the file whose
//!   network is called like this in the plugin's `confDir`";
//! - [`NetworkStatus`]: one entry of the `k8s.v1.cni.cncf.io/network-status` list, what each
//!   attachment of a pod got (interface, addresses, MAC, default, DNS).
//!
//! Definitions are validated when applied (the config must be a CNI conf or conflist), so a
//! pod never meets a definition that cannot be loaded.

use policy::reader::{FieldError, Object};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The API group and version of NetworkAttachmentDefinition.
pub const NAD_API_VERSION: &str = "k8s.cni.cncf.io/v1";
pub const NAD_KIND: &str = "NetworkAttachmentDefinition";
/// The pod annotation that selects secondary networks.
pub const NETWORKS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/networks";
/// The pod annotation Multus writes with every attachment's outcome.
pub const NETWORK_STATUS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/network-status";
/// The pod annotation that replaces the cluster network for one pod.
pub const DEFAULT_NETWORK_ANNOTATION: &str = "v1.multus-cni.io/default-network";

/// `/twill/netattachdefs/NS/NAME`: a NetworkAttachmentDefinition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetAttachDef {
    pub namespace: String,
    pub name: String,
    /// `spec.config` as written: a CNI conf or conflist in JSON, or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub config: String,
}

/// What a definition's config is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefinitionConfig {
    /// The file in the plugin's `confDir` whose network name is the definition's name.
    ConfDirFile,
    /// A conflist or a single conf (the JSON object, with `name` filled in from the
    /// definition when the config has none, as Multus does).
    Inline { conflist: bool, config: Map<String, Value> },
}

impl NetAttachDef {
    /// `ns/name`: how network-status and error messages name the definition.
    pub fn qualified(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The config, parsed and checked as a CNI conf or conflist.
    pub fn definition(&self) -> Result<DefinitionConfig, String> {
        if self.config.trim().is_empty() {
            return Ok(DefinitionConfig::ConfDirFile);
        }
        let value: Value = serde_json::from_str(&self.config).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(mut config) = value else {
            return Err("must be a JSON object (a CNI conf or conflist)".into());
        };
        if config.get("name").and_then(Value::as_str).unwrap_or_default().is_empty() {
            config.insert("name".into(), Value::String(self.name.clone()));
        }
        let conflist = config.contains_key("plugins");
        let bytes = serde_json::to_vec(&config).map_err(|e| e.to_string())?;
        let parsed = if conflist {
            cni_spec::NetConfList::parse(&bytes)
        } else {
            cni_spec::NetConfList::from_conf(&bytes)
        };
        let list = parsed.map_err(|e| e.msg)?;
        list.negotiate(&cni_spec::Version::ALL)
            .map_err(|e| format!("cniVersion {:?}: {}", list.cni_version, e.msg))?;
        Ok(DefinitionConfig::Inline { conflist, config })
    }
}

/// A manifest object of kind NetworkAttachmentDefinition, already checked for its kind.
pub fn decode_definition(root: &Object) -> Result<NetAttachDef, FieldError> {
    let (namespace, name) = policy::metadata(root, true)?;
    root.allow_only(&["apiVersion", "kind", "metadata", "spec"])?;
    let mut nad = NetAttachDef { namespace, name, config: String::new() };
    if let Some(spec) = root.get("spec") {
        let spec = spec.object()?;
        spec.allow_only(&["config"])?;
        if let Some(config) = spec.get("config") {
            nad.config = config.str()?.to_string();
            nad.definition().map_err(|message| config.err(message))?;
        }
    }
    Ok(nad)
}

/// DNS settings of an attachment, as the network-status annotation writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl StatusDns {
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.is_empty()
            && self.search.is_empty()
            && self.options.is_empty()
    }
}

/// One element of `k8s.v1.cni.cncf.io/network-status`: a pod interface and what it got.
/// Field names are the specification's, so the list reads like Multus's annotation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkStatus {
    /// The cluster network's name, or `namespace/name` of a NetworkAttachmentDefinition.
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// True for the attachment that carries the pod's default route (the cluster network's
    /// interface unless a selection moved it with `default-route`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    #[serde(default, skip_serializing_if = "StatusDns::is_empty")]
    pub dns: StatusDns,
    /// Next hops of the attachment's default routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nad(config: &str) -> NetAttachDef {
        NetAttachDef { namespace: "default".into(), name: "data".into(), config: config.into() }
    }

    #[test]
    fn configs_are_confs_conflists_or_empty() {
        assert_eq!(nad("  ").definition(), Ok(DefinitionConfig::ConfDirFile));
        let Ok(DefinitionConfig::Inline { conflist, config }) =
            nad(r#"{"cniVersion":"1.0.0","type":"macvlan","master":"data0"}"#).definition()
        else {
            panic!()
        };
        assert!(!conflist);
        assert_eq!(config["name"], "data", "a config without name takes the definition's");
        let Ok(DefinitionConfig::Inline { conflist, config }) =
            nad(r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"}]}"#).definition()
        else {
            panic!()
        };
        assert!(conflist);
        assert_eq!(config["name"], "n");
    }

    #[test]
    fn bad_configs_say_why() {
        for (config, want) in [
            ("{", "not JSON"),
            ("[1]", "JSON object"),
            (r#"{"cniVersion":"1.0.0"}"#, "type"),
            (r#"{"cniVersion":"1.0.0","plugins":[]}"#, "plugins"),
            (r#"{"cniVersion":"9.9.9","type":"x"}"#, "9.9.9"),
        ] {
            let e = nad(config).definition().unwrap_err();
            assert!(e.contains(want), "{config}: {e}");
        }
    }

    #[test]
    fn network_status_reads_like_the_annotation() {
        let s = NetworkStatus {
            name: "default/data".into(),
            interface: "net1".into(),
            ips: vec!["10.10.0.2".into()],
            mac: "02:00:00:00:00:01".into(),
            ..NetworkStatus::default()
        };
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"name": "default/data", "interface": "net1", "ips": ["10.10.0.2"], "mac": "02:00:00:00:00:01"})
        );
        let d: NetworkStatus = serde_json::from_value(json!({"name": "twill", "default": true,
            "dns": {"nameservers": ["10.96.0.10"]}, "device-info": {"type": "pci"}}))
        .unwrap();
        assert!(d.default);
        assert_eq!(d.dns.nameservers, ["10.96.0.10"]);
    }
}
