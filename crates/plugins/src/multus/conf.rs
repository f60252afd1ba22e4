//! The multus plugin's configuration: Multus's own keys (docs/configuration.md of
//! multus-cni) with its defaults, plus twill's: where the cluster datastore is (in place of
//! `kubeconfig`: twill has no Kubernetes API server; pods' annotations and the
//! NetworkAttachmentDefinitions live in the cluster datastore) and the node's attachment
//! journal. Everything is checked before anything is touched.

use std::path::PathBuf;

use cluster::{DatastoreConf, EtcdTls};
use cni_spec::{Error, NetConf};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::log::{Level, Log};

/// Multus's defaults.
pub const DEFAULT_CONF_DIR: &str = "/etc/cni/multus/net.d";
pub const DEFAULT_CNI_DIR: &str = "/var/lib/cni/multus";
pub const DEFAULT_MULTUS_NAMESPACE: &str = "kube-system";
pub const DEFAULT_SYSTEM_NAMESPACES: [&str; 1] = ["kube-system"];
/// With `namespaceIsolation`, definitions here may be used from any namespace.
pub const DEFAULT_GLOBAL_NAMESPACES: [&str; 1] = ["default"];

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Raw {
    cluster_network: Option<String>,
    default_networks: Vec<String>,
    delegates: Vec<Value>,
    conf_dir: Option<PathBuf>,
    cni_dir: Option<PathBuf>,
    bin_dir: Option<PathBuf>,
    system_namespaces: Option<Vec<String>>,
    namespace_isolation: bool,
    global_namespaces: Option<String>,
    multus_namespace: Option<String>,
    #[serde(rename = "readinessindicatorfile")]
    readiness_indicator_file: Option<String>,
    log_level: Option<String>,
    log_file: Option<PathBuf>,
    log_to_stderr: Option<bool>,
    kubeconfig: Option<PathBuf>,
    datastore: Option<String>,
    #[serde(rename = "etcdCACert")]
    etcd_ca_cert: Option<PathBuf>,
    etcd_cert: Option<PathBuf>,
    etcd_key: Option<PathBuf>,
    journal_dir: Option<PathBuf>,
    agent_socket: Option<PathBuf>,
}

/// Where the cluster network comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterNetwork {
    /// `clusterNetwork`: a definition's name, a network name in `confDir`, or a path.
    Reference(String),
    /// `delegates[0]`, inline.
    Inline(Map<String, Value>),
}

/// A checked multus configuration.
#[derive(Debug, Clone)]
pub struct MultusConf {
    pub cluster: ClusterNetwork,
    /// `defaultNetworks` by reference (with `clusterNetwork`).
    pub default_networks: Vec<String>,
    /// `delegates[1..]`, attached to every pod after the cluster network.
    pub extra_delegates: Vec<Map<String, Value>>,
    pub conf_dir: PathBuf,
    pub cni_dir: PathBuf,
    pub bin_dir: Option<PathBuf>,
    pub system_namespaces: Vec<String>,
    pub namespace_isolation: bool,
    pub global_namespaces: Vec<String>,
    pub multus_namespace: String,
    pub readiness_indicator_file: Option<PathBuf>,
    pub log: Log,
    pub datastore: Option<DatastoreConf>,
    pub journal_dir: Option<PathBuf>,
    pub agent_socket: Option<PathBuf>,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::invalid_config(format!("multus: {}", msg.into()))
}

/// Keys of Multus that twill does not implement: refused with the reason rather than ignored.
fn refuse_unsupported(raw: &Map<String, Value>) -> Result<(), Error> {
    let refused = [
        ("auxiliaryCNIChainName", "auxiliary CNI chains are not supported"),
        ("logOptions", "log rotation is not supported (rotate logFile with logrotate's copytruncate)"),
    ];
    match refused.iter().find(|(k, _)| raw.get(*k).is_some_and(|v| !v.is_null())) {
        Some((key, why)) => Err(invalid(format!("{key}: {why}"))),
        None => Ok(()),
    }
}

/// An inline delegate: a conf (`type`) or a conflist (`plugins`), given the multus
/// version when it names none and a name when it has none.
fn delegate(index: usize, value: Value, conf: &NetConf) -> Result<Map<String, Value>, Error> {
    let Value::Object(mut map) = value else {
        return Err(invalid(format!("delegates[{index}] must be a CNI conf or conflist object")));
    };
    if !map.contains_key("type") && !map.contains_key("plugins") {
        return Err(invalid(format!("delegates[{index}] has neither \"type\" nor \"plugins\"")));
    }
    let empty = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().is_empty();
    if empty(map.get("cniVersion")) {
        map.insert("cniVersion".into(), Value::String(conf.cni_version.clone()));
    }
    if empty(map.get("name")) {
        let name = if index == 0 { conf.name.clone() } else { format!("{}-{index}", conf.name) };
        map.insert("name".into(), Value::String(name));
    }
    super::resolve::check_list(&map).map_err(|e| invalid(format!("delegates[{index}]: {e}")))?;
    Ok(map)
}

fn datastore(raw: &Raw) -> Result<Option<DatastoreConf>, Error> {
    let tls =
        EtcdTls { cacert: raw.etcd_ca_cert.clone(), cert: raw.etcd_cert.clone(), key: raw.etcd_key.clone() };
    match raw.datastore.as_deref().filter(|d| !d.is_empty()) {
        None if !tls.is_empty() => Err(invalid("etcdCACert/etcdCert/etcdKey given without datastore")),
        None => Ok(None),
        Some(d) => DatastoreConf::parse(d, tls).map(Some).map_err(|e| invalid(format!("datastore: {e}"))),
    }
}

fn absolute(key: &str, p: Option<PathBuf>) -> Result<Option<PathBuf>, Error> {
    match p {
        Some(p) if !p.is_absolute() => {
            Err(invalid(format!("{key} must be an absolute path, not {}", p.display())))
        }
        other => Ok(other),
    }
}

impl MultusConf {
    pub fn parse(conf: &NetConf) -> Result<MultusConf, Error> {
        refuse_unsupported(&conf.raw)?;
        let raw: Raw = conf.plugin_conf()?;
        let cluster_ref = raw.cluster_network.clone().filter(|c| !c.is_empty());
        let mut delegates = raw.delegates.clone().into_iter().enumerate();
        // Multus: with clusterNetwork set, delegates are ignored.
        let (cluster, extra_delegates) = match cluster_ref {
            Some(c) => (ClusterNetwork::Reference(c), Vec::new()),
            None => {
                let (_, first) =
                    delegates.next().ok_or_else(|| invalid("set clusterNetwork or at least one delegate"))?;
                let rest = delegates.map(|(i, d)| delegate(i, d, conf)).collect::<Result<Vec<_>, _>>()?;
                (ClusterNetwork::Inline(delegate(0, first, conf)?), rest)
            }
        };
        if !raw.default_networks.is_empty() && matches!(cluster, ClusterNetwork::Inline(_)) {
            return Err(invalid("defaultNetworks needs clusterNetwork (with delegates, list them there)"));
        }
        let level = match raw.log_level.as_deref() {
            None | Some("") => Level::Panic,
            Some(l) => Level::parse(l)
                .ok_or_else(|| invalid(format!("logLevel {l:?}: expected debug, verbose, error or panic")))?,
        };
        let log =
            Log::new(level, absolute("logFile", raw.log_file.clone())?, raw.log_to_stderr.unwrap_or(true));
        if let Some(k) = &raw.kubeconfig {
            log.debug(&format!(
                "kubeconfig {} is not used: pods and NetworkAttachmentDefinitions come from the cluster datastore",
                k.display()
            ));
        }
        Ok(MultusConf {
            cluster,
            default_networks: raw.default_networks.clone(),
            extra_delegates,
            conf_dir: absolute("confDir", raw.conf_dir.clone())?.unwrap_or_else(|| DEFAULT_CONF_DIR.into()),
            cni_dir: absolute("cniDir", raw.cni_dir.clone())?.unwrap_or_else(|| DEFAULT_CNI_DIR.into()),
            bin_dir: absolute("binDir", raw.bin_dir.clone())?,
            system_namespaces: raw
                .system_namespaces
                .clone()
                .unwrap_or_else(|| DEFAULT_SYSTEM_NAMESPACES.map(String::from).to_vec()),
            namespace_isolation: raw.namespace_isolation,
            global_namespaces: match &raw.global_namespaces {
                Some(g) => g.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(),
                None => DEFAULT_GLOBAL_NAMESPACES.map(String::from).to_vec(),
            },
            multus_namespace: raw
                .multus_namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| DEFAULT_MULTUS_NAMESPACE.into()),
            readiness_indicator_file: raw
                .readiness_indicator_file
                .clone()
                .filter(|f| !f.is_empty())
                .map(PathBuf::from),
            log,
            datastore: datastore(&raw)?,
            journal_dir: absolute("journalDir", raw.journal_dir.clone())?,
            agent_socket: absolute("agentSocket", raw.agent_socket.clone())?,
        })
    }

    /// Where delegates' plugins are looked for: `binDir`, then the runtime's CNI_PATH.
    pub fn plugin_path(&self, cni_path: &[PathBuf]) -> Vec<PathBuf> {
        self.bin_dir.iter().cloned().chain(cni_path.iter().cloned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<MultusConf, Error> {
        MultusConf::parse(&NetConf::parse(v.to_string().as_bytes()).unwrap())
    }

    fn base() -> Value {
        json!({"cniVersion": "0.3.1", "name": "multus-cni-network", "type": "multus"})
    }

    #[test]
    fn the_seed_example_parses_with_multus_defaults() {
        let mut v = base();
        v["capabilities"] = json!({"portMappings": true, "bandwidth": true});
        v["kubeconfig"] = json!("/etc/cni/net.d/multus.d/multus.kubeconfig");
        v["delegates"] = json!([{"name": "k8s-pod-network", "cniVersion": "0.3.1",
            "plugins": [{"type": "bridge"}, {"type": "portmap", "capabilities": {"portMappings": true}}]}]);
        let c = parse(v).unwrap();
        let ClusterNetwork::Inline(first) = &c.cluster else { panic!() };
        assert_eq!(first["name"], "k8s-pod-network");
        assert_eq!(c.conf_dir, PathBuf::from(DEFAULT_CONF_DIR));
        assert_eq!(c.cni_dir, PathBuf::from(DEFAULT_CNI_DIR));
        assert_eq!(
            (c.multus_namespace.as_str(), c.system_namespaces.clone()),
            ("kube-system", vec!["kube-system".into()])
        );
        assert_eq!(c.global_namespaces, ["default"]);
        assert!(c.datastore.is_none() && c.extra_delegates.is_empty());
    }

    #[test]
    fn delegates_get_a_version_and_a_name() {
        let mut v = base();
        v["delegates"] = json!([{"type": "bridge"}, {"type": "macvlan", "master": "data0"}]);
        let c = parse(v).unwrap();
        let ClusterNetwork::Inline(first) = &c.cluster else { panic!() };
        assert_eq!((&first["name"], &first["cniVersion"]), (&json!("multus-cni-network"), &json!("0.3.1")));
        assert_eq!(c.extra_delegates[0]["name"], "multus-cni-network-1");
    }

    #[test]
    fn cluster_network_wins_over_delegates() {
        let mut v = base();
        v["clusterNetwork"] = json!("/etc/cni/net.d/10-twill.conflist");
        v["delegates"] = json!([{"type": "bridge"}]);
        v["defaultNetworks"] = json!(["sidecar"]);
        v["namespaceIsolation"] = json!(true);
        v["globalNamespaces"] = json!("default, shared");
        v["datastore"] = json!("file:/var/lib/twill/datastore");
        let c = parse(v).unwrap();
        assert_eq!(c.cluster, ClusterNetwork::Reference("/etc/cni/net.d/10-twill.conflist".into()));
        assert_eq!(c.default_networks, ["sidecar"]);
        assert_eq!(c.global_namespaces, ["default", "shared"]);
        assert!(c.namespace_isolation && c.datastore.is_some());
    }

    #[test]
    fn bad_configs_are_code_7_and_say_why() {
        let cases = [
            (json!({}), "set clusterNetwork or at least one delegate"),
            (json!({"delegates": [1]}), "delegates[0] must be a CNI conf or conflist object"),
            (json!({"delegates": [{"name": "x"}]}), "delegates[0] has neither"),
            (json!({"delegates": [{"plugins": []}]}), "delegates[0]:"),
            (json!({"clusterNetwork": "x", "cniDir": "rel/dir"}), "cniDir must be an absolute path"),
            (json!({"clusterNetwork": "x", "logLevel": "loud"}), "logLevel \"loud\""),
            (json!({"clusterNetwork": "x", "datastore": "zk:x"}), "datastore:"),
            (json!({"clusterNetwork": "x", "etcdCACert": "/ca.pem"}), "without datastore"),
            (json!({"clusterNetwork": "x", "auxiliaryCNIChainName": "c"}), "auxiliary CNI chains"),
            (json!({"delegates": [{"type": "bridge"}], "defaultNetworks": ["a"]}), "defaultNetworks needs"),
        ];
        for (extra, want) in cases {
            let mut v = base();
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            let e = parse(v).unwrap_err();
            assert_eq!(e.code.code(), 7, "{e}");
            assert!(e.msg.contains(want), "{want}: {}", e.msg);
        }
    }
}
