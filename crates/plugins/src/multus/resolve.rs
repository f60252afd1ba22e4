//! From names to network configurations, in Multus's order:
//! - `clusterNetwork` and `defaultNetworks`: a path (a directory — its alphabetically first
//!   `.conf`/`.conflist` — or a file), else a NetworkAttachmentDefinition in `multusNamespace`,
//!   else the network of that name in `confDir`;
//! - a pod's selection: a NetworkAttachmentDefinition in the selection's namespace (the
//!   pod's by default), whose config is inline or, when empty, the network of the
//!   definition's name in `confDir`.
//!
//! Definitions and the pod's annotations come from a [`Cluster`]: the datastore, or nothing
//! when the config names none.

use std::collections::BTreeMap;
use std::path::Path;

use cluster::NetAttachDef;
use cluster::multinet::DefinitionConfig;
use cni_exec::LoadedList;
use cni_spec::{Error, NetConfList};
use serde_json::{Map, Value};

use super::conf::MultusConf;
use super::selection::Selection;

/// What the cluster knows about definitions and pods.
pub trait Cluster {
    /// Whether there is a datastore to ask at all.
    fn available(&self) -> bool;
    /// The definition `namespace/name`, `None` when it does not exist.
    fn definition(&mut self, namespace: &str, name: &str) -> Result<Option<NetAttachDef>, Error>;
    /// The annotations the operator gave the pod (its PodMeta), `None` when it has none.
    fn pod_annotations(
        &mut self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, Error>;
}

/// A network configuration as a delegate runs it: a conflist, or a single conf.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
    pub config: Map<String, Value>,
    pub conflist: bool,
}

impl NetworkConfig {
    pub fn name(&self) -> &str {
        self.config.get("name").and_then(Value::as_str).unwrap_or_default()
    }

    /// The configuration as the runtime side loads it.
    pub fn loaded(&self) -> Result<LoadedList, Error> {
        let bytes = serde_json::to_vec(&self.config)
            .map_err(|e| Error::invalid_config(format!("multus: encode network {}: {e}", self.name())))?;
        let list = if self.conflist { NetConfList::parse(&bytes) } else { NetConfList::from_conf(&bytes) };
        let list =
            list.map_err(|e| Error { msg: format!("multus: network {}: {}", self.name(), e.msg), ..e })?;
        Ok(LoadedList { list, bytes, source: Default::default() })
    }

    fn from_loaded(loaded: &LoadedList) -> Result<NetworkConfig, Error> {
        let config: Map<String, Value> = serde_json::from_slice(&loaded.bytes)
            .map_err(|e| Error::decode(format!("multus: {}: {e}", loaded.source.display())))?;
        Ok(NetworkConfig { conflist: config.contains_key("plugins"), config })
    }
}

/// Checks an inline conf or conflist the way the runtime side will load it.
pub fn check_list(config: &Map<String, Value>) -> Result<(), String> {
    let net = NetworkConfig { config: config.clone(), conflist: config.contains_key("plugins") };
    let loaded = net.loaded().map_err(|e| e.msg)?;
    loaded.list.negotiate(&cni_spec::Version::ALL).map(drop).map_err(|e| e.msg)
}

/// A network to attach, and its name in network-status.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub status_name: String,
    pub net: NetworkConfig,
}

fn config_err(e: cni_exec::Error) -> Error {
    let cni = e.to_cni();
    Error { msg: format!("multus: {}", cni.msg), ..cni }
}

/// The network named `name` in `dir` (conflists first, then confs, as libcni looks).
fn in_conf_dir(dir: &Path, name: &str) -> Result<NetworkConfig, Error> {
    NetworkConfig::from_loaded(&cni_exec::load_network(dir, name).map_err(config_err)?)
}

/// A path: a file, or a directory's alphabetically first `.conf`/`.conflist`.
fn from_path(path: &Path) -> Result<NetworkConfig, Error> {
    let file = if path.is_dir() {
        let mut files = cni_exec::conf_files(path, &["conf", "conflist"]).map_err(config_err)?;
        files.sort_by_key(|f| f.file_name().map(|n| n.to_os_string()));
        files.into_iter().next().ok_or_else(|| {
            Error::invalid_config(format!("multus: no .conf or .conflist file in {}", path.display()))
        })?
    } else {
        path.to_path_buf()
    };
    let conflist = file.extension().is_some_and(|e| e == "conflist");
    let loaded = if conflist {
        cni_exec::load_list_file(&file).map_err(config_err)?
    } else {
        let bytes = std::fs::read(&file)
            .map_err(|e| Error::invalid_config(format!("multus: read {}: {e}", file.display())))?;
        LoadedList { list: NetConfList::from_conf(&bytes)?, bytes, source: file.clone() }
    };
    NetworkConfig::from_loaded(&loaded)
}

/// A definition's network.
pub fn from_definition(def: &NetAttachDef, conf_dir: &Path) -> Result<Resolved, Error> {
    let status_name = def.qualified();
    let bad = |m: String| {
        Error::invalid_config(format!("multus: network-attachment-definition {status_name}: {m}"))
    };
    let net = match def.definition().map_err(|m| bad(format!("spec.config: {m}")))? {
        DefinitionConfig::ConfDirFile => {
            in_conf_dir(conf_dir, &def.name).map_err(|e| bad(format!("empty config, and {}", e.msg)))?
        }
        DefinitionConfig::Inline { conflist, config } => NetworkConfig { config, conflist },
    };
    Ok(Resolved { status_name, net })
}

/// `clusterNetwork`, a `defaultNetworks` entry or a default-network annotation's name.
/// `local` skips the datastore (DEL without a cache must not need it).
pub fn by_reference(
    reference: &str,
    conf: &MultusConf,
    cluster: &mut dyn Cluster,
    local: bool,
) -> Result<Resolved, Error> {
    if reference.contains('/') && Path::new(reference).is_absolute() {
        let net = from_path(Path::new(reference))?;
        return Ok(Resolved { status_name: net.name().to_string(), net });
    }
    let (namespace, name) = match reference.split_once('/') {
        Some((ns, n)) => (ns, n),
        None => (conf.multus_namespace.as_str(), reference),
    };
    if !local
        && cluster.available()
        && let Some(def) = cluster.definition(namespace, name)?
    {
        return from_definition(&def, &conf.conf_dir);
    }
    match in_conf_dir(&conf.conf_dir, name) {
        Ok(net) => Ok(Resolved { status_name: name.to_string(), net }),
        Err(e) => Err(Error::invalid_config(format!(
            "multus: network {reference:?} is neither a path, nor a network-attachment-definition {namespace}/{name}{}, nor a network in confDir ({})",
            if cluster.available() { "" } else { " (no datastore is configured)" },
            e.msg.trim_start_matches("multus: ")
        ))),
    }
}

/// The definition a pod's selection names, within the rules of `namespaceIsolation`.
pub fn selected(
    sel: &Selection,
    pod_namespace: &str,
    conf: &MultusConf,
    cluster: &mut dyn Cluster,
) -> Result<Resolved, Error> {
    let namespace = sel.namespace.as_deref().unwrap_or(pod_namespace);
    let qualified = format!("{namespace}/{}", sel.name);
    if conf.namespace_isolation
        && namespace != pod_namespace
        && !conf.global_namespaces.iter().any(|g| g == namespace)
    {
        return Err(Error::invalid_config(format!(
            "multus: namespace isolation: a pod in namespace {pod_namespace} may not use network-attachment-definition {qualified} (allowed: its own namespace and {})",
            conf.global_namespaces.join(", ")
        )));
    }
    if !cluster.available() {
        return Err(Error::invalid_config(format!(
            "multus: network-attachment-definition {qualified} cannot be looked up: no datastore is configured (set \"datastore\")"
        )));
    }
    let def = cluster.definition(namespace, &sel.name)?.ok_or_else(|| {
        Error::invalid_config(format!("multus: network-attachment-definition {qualified} not found"))
    })?;
    from_definition(&def, &conf.conf_dir)
}

#[cfg(test)]
pub mod fake {
    use super::*;

    /// Definitions and pod annotations held in memory.
    #[derive(Default)]
    pub struct FakeCluster {
        pub available: bool,
        pub definitions: Vec<NetAttachDef>,
        pub pods: BTreeMap<(String, String), BTreeMap<String, String>>,
        pub lookups: usize,
    }

    impl Cluster for FakeCluster {
        fn available(&self) -> bool {
            self.available
        }

        fn definition(&mut self, namespace: &str, name: &str) -> Result<Option<NetAttachDef>, Error> {
            self.lookups += 1;
            Ok(self.definitions.iter().find(|d| d.namespace == namespace && d.name == name).cloned())
        }

        fn pod_annotations(
            &mut self,
            ns: &str,
            name: &str,
        ) -> Result<Option<BTreeMap<String, String>>, Error> {
            self.lookups += 1;
            Ok(self.pods.get(&(ns.to_string(), name.to_string())).cloned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeCluster;
    use super::*;
    use serde_json::json;

    fn tmp(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("twill-multus-resolve-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn conf(dir: &Path) -> MultusConf {
        let v = json!({"cniVersion": "1.0.0", "name": "m", "type": "multus", "clusterNetwork": "twill",
            "confDir": dir, "namespaceIsolation": true});
        MultusConf::parse(&cni_spec::NetConf::parse(v.to_string().as_bytes()).unwrap()).unwrap()
    }

    fn nad(ns: &str, name: &str, config: &str) -> NetAttachDef {
        NetAttachDef { namespace: ns.into(), name: name.into(), config: config.into() }
    }

    #[test]
    fn references_resolve_in_multus_order() {
        let dir = tmp("order");
        std::fs::write(
            dir.join("10-twill.conflist"),
            r#"{"cniVersion":"1.0.0","name":"twill","plugins":[{"type":"bridge"}]}"#,
        )
        .unwrap();
        std::fs::write(dir.join("20-data.conf"), r#"{"cniVersion":"1.0.0","name":"data","type":"macvlan"}"#)
            .unwrap();
        let c = conf(&dir);
        let mut cluster = FakeCluster { available: true, ..FakeCluster::default() };
        let r = by_reference("twill", &c, &mut cluster, false).unwrap();
        assert_eq!((r.status_name.as_str(), r.net.conflist), ("twill", true));
        cluster.definitions.push(nad("kube-system", "twill", r#"{"cniVersion":"1.0.0","type":"ptp"}"#));
        let r = by_reference("twill", &c, &mut cluster, false).unwrap();
        assert_eq!(
            (r.status_name.as_str(), r.net.config["type"].as_str()),
            ("kube-system/twill", Some("ptp"))
        );
        let r = by_reference("twill", &c, &mut cluster, true).unwrap();
        assert_eq!(r.status_name, "twill", "local resolution skips the datastore");
        let path = dir.join("20-data.conf");
        let r = by_reference(path.to_str().unwrap(), &c, &mut cluster, false).unwrap();
        assert_eq!((r.status_name.as_str(), r.net.conflist), ("data", false));
        let r = by_reference(dir.to_str().unwrap(), &c, &mut cluster, false).unwrap();
        assert_eq!(r.status_name, "twill", "a directory's first file");
        let e = by_reference("nope", &c, &mut FakeCluster::default(), false).unwrap_err();
        assert!(e.msg.contains("no datastore is configured") && e.msg.contains("\"nope\""), "{}", e.msg);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn selections_are_definitions_within_namespace_isolation() {
        let dir = tmp("sel");
        std::fs::write(
            dir.join("data.conf"),
            r#"{"cniVersion":"1.0.0","name":"from-file","type":"macvlan"}"#,
        )
        .unwrap();
        let c = conf(&dir);
        let mut cluster = FakeCluster {
            available: true,
            definitions: vec![
                nad("x", "data", r#"{"cniVersion":"1.0.0","type":"macvlan"}"#),
                nad("default", "from-file", ""),
                nad("other", "data", r#"{"cniVersion":"1.0.0","type":"macvlan"}"#),
            ],
            ..FakeCluster::default()
        };
        let sel = |ns: Option<&str>, name: &str| Selection {
            namespace: ns.map(String::from),
            name: name.into(),
            ..Selection::default()
        };
        let r = selected(&sel(None, "data"), "x", &c, &mut cluster).unwrap();
        assert_eq!((r.status_name.as_str(), r.net.name()), ("x/data", "data"));
        let r = selected(&sel(Some("default"), "from-file"), "x", &c, &mut cluster).unwrap();
        assert_eq!((r.status_name.as_str(), r.net.name()), ("default/from-file", "from-file"));
        let e = selected(&sel(Some("other"), "data"), "x", &c, &mut cluster).unwrap_err();
        assert!(e.msg.contains("namespace isolation"), "{}", e.msg);
        let e = selected(&sel(None, "missing"), "x", &c, &mut cluster).unwrap_err();
        assert_eq!(
            (e.code.code(), e.msg.as_str()),
            (7, "multus: network-attachment-definition x/missing not found")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
