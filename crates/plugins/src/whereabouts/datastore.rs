//! Where the reservations live, read from the (merged) IPAM config, and which node this is.
//!
//! `datastore` takes twill's own form — `file:DIR` or `etcd:https://HOST:PORT,...` — or
//! Whereabouts' `etcd` with `etcd_host` (`HOST:PORT[,HOST:PORT]`, a scheme optional: https
//! when a CA is given). The TLS files are Whereabouts' keys: `etcd_ca_cert_file`,
//! `etcd_cert_file`, `etcd_key_file`. Whereabouts' `kubernetes` datastore and etcd basic
//! auth are refused with the reason, never silently replaced.

use std::path::PathBuf;

use cluster::{DatastoreConf, EtcdTls};
use cni_spec::Error;
use serde_json::{Map, Value};

fn text<'a>(ipam: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, Error> {
    match ipam.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim())),
        Some(other) => Err(Error::invalid_config(format!("ipam.{key}: expected a string, found {other}"))),
    }
}

fn tls(ipam: &Map<String, Value>) -> Result<EtcdTls, Error> {
    let path = |k| Ok::<_, Error>(text(ipam, k)?.map(PathBuf::from));
    Ok(EtcdTls {
        cacert: path("etcd_ca_cert_file")?,
        cert: path("etcd_cert_file")?,
        key: path("etcd_key_file")?,
    })
}

/// `HOST:PORT[,...]` with or without schemes, as `etcd:URL,...`.
fn etcd_endpoint(hosts: &str, https: bool) -> String {
    let scheme = if https { "https://" } else { "http://" };
    let urls: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| if h.contains("://") { h.to_string() } else { format!("{scheme}{h}") })
        .collect();
    format!("etcd:{}", urls.join(","))
}

/// The datastore the IPAM config names.
pub fn datastore(ipam: &Map<String, Value>) -> Result<DatastoreConf, Error> {
    for key in ["etcd_username", "etcd_password"] {
        if text(ipam, key)?.is_some() {
            return Err(Error::invalid_config(format!(
                "ipam.{key}: etcd basic authentication is not supported; use client certificates (etcd_cert_file, etcd_key_file)"
            )));
        }
    }
    let tls = tls(ipam)?;
    let hosts = text(ipam, "etcd_host")?;
    let value = match (text(ipam, "datastore")?, hosts) {
        (Some(d), _) if d.starts_with("file:") || d.starts_with("etcd:") => d.to_string(),
        (Some("etcd") | None, Some(h)) => etcd_endpoint(h, tls.cacert.is_some()),
        (Some("etcd"), None) => {
            return Err(Error::invalid_config("ipam.datastore is etcd but ipam.etcd_host is not set"));
        }
        (Some("kubernetes"), _) => {
            return Err(Error::invalid_config(
                "ipam.datastore kubernetes is not supported by twill's whereabouts (there is no API server to keep IPPools in); use etcd (with etcd_host) or file:DIR",
            ));
        }
        (Some(other), _) => {
            return Err(Error::invalid_config(format!(
                "ipam.datastore {other:?}: expected etcd (with etcd_host), etcd:https://HOST:PORT[,...] or file:DIR"
            )));
        }
        (None, None) => {
            return Err(Error::invalid_config(
                "no datastore: set ipam.datastore (etcd with etcd_host, or file:DIR), or write the flat file /etc/cni/net.d/whereabouts.d/whereabouts.conf (twilld writes it)",
            ));
        }
    };
    DatastoreConf::parse(&value, tls).map_err(|e| Error::invalid_config(format!("ipam.datastore: {e}")))
}

/// `node_name` (twill's key, which twilld writes into the flat file), else `NODENAME` as
/// Whereabouts reads it, else the host name.
pub fn node_name(ipam: &Map<String, Value>, env_nodename: Option<String>) -> Result<String, Error> {
    if let Some(n) = text(ipam, "node_name")? {
        return Ok(n.to_string());
    }
    if let Some(n) = env_nodename.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()) {
        return Ok(n);
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    match host.trim() {
        "" => Err(Error::invalid_config(
            "no node name: set ipam.node_name (twilld writes it into the flat file)",
        )),
        h => Ok(h.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster::Endpoint;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn twill_and_whereabouts_forms() {
        let d = datastore(&obj(json!({"datastore": "file:/var/lib/x"}))).unwrap();
        assert_eq!(d.endpoint, Endpoint::File("/var/lib/x".into()));
        let d = datastore(&obj(json!({"etcd_host": "10.0.0.1:2379, 10.0.0.2:2379"}))).unwrap();
        assert_eq!(d.to_string(), "etcd:http://10.0.0.1:2379,http://10.0.0.2:2379");
        let d = datastore(&obj(json!({"datastore": "etcd", "etcd_host": "a:2379",
            "etcd_ca_cert_file": "/ca.pem", "etcd_cert_file": "/c.pem", "etcd_key_file": "/k.pem"})))
        .unwrap();
        assert_eq!(d.to_string(), "etcd:https://a:2379");
        assert_eq!(d.tls.key, Some(PathBuf::from("/k.pem")));
        let d = datastore(&obj(json!({"datastore": "etcd:https://a:1", "etcd_ca_cert_file": "/ca.pem"})))
            .unwrap();
        assert_eq!(d.tls.cacert, Some(PathBuf::from("/ca.pem")));
    }

    #[test]
    fn refusals_say_why() {
        let cases = [
            (json!({}), "no datastore"),
            (json!({"datastore": "kubernetes", "kubernetes": {"kubeconfig": "/k"}}), "not supported"),
            (json!({"datastore": "etcd"}), "etcd_host is not set"),
            (json!({"datastore": "zk"}), "expected etcd"),
            (json!({"etcd_host": "a:1", "etcd_password": "p"}), "basic authentication"),
            (json!({"datastore": "etcd:https://a:1"}), "--etcd-cacert"),
            (json!({"datastore": 7}), "expected a string"),
        ];
        for (ipam, want) in cases {
            let err = datastore(&obj(ipam.clone())).unwrap_err();
            assert_eq!(err.code.code(), 7, "{ipam}");
            assert!(err.msg.contains(want), "{ipam}: {}", err.msg);
        }
    }

    #[test]
    fn node_name_order() {
        assert_eq!(node_name(&obj(json!({"node_name": "n1"})), Some("env".into())).unwrap(), "n1");
        assert_eq!(node_name(&obj(json!({})), Some(" env ".into())).unwrap(), "env");
        assert!(!node_name(&obj(json!({})), None).unwrap().is_empty());
    }
}
