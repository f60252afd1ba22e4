//! Cluster-wide IPAM on the node: the `whereabouts` plugin's flat file, and the reconciler
//! that frees reservations nobody else will (where Whereabouts runs a CronJob).
//!
//! - [`ensure_flat_file`] writes `<conf dir>/whereabouts.d/whereabouts.conf` with this
//!   node's datastore (in Whereabouts' keys: `datastore`, `etcd_host`, `etcd_*_file`) and
//!   `node_name`, so a network's `ipam` needs nothing but its ranges;
//! - [`IpPoolReconciler`] frees, after a grace period, reservations whose node is gone or
//!   whose pod has no record (`cluster::ippool::orphans`). Every agent runs it; frees are
//!   compare-and-swap, so two agents never free one reservation twice, and a reservation
//!   rewritten meanwhile is left alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cluster::ippool::orphans::{Cluster, Reason, Tracker};
use cluster::ippool::{self, IpPoolError};
use cluster::{Datastore, DatastoreConf, Endpoint, Registry};
use serde_json::{Value, json};

use crate::cniconf::{CniConfError, write_if_changed};

/// `<conf dir>/whereabouts.d/whereabouts.conf`, where Whereabouts looks for it.
pub fn flat_file_path(conf_dir: &Path) -> PathBuf {
    conf_dir.join("whereabouts.d").join("whereabouts.conf")
}

/// The flat file's content for this node.
pub fn build_flat_file(node: &str, datastore: &DatastoreConf) -> Value {
    let mut v = match &datastore.endpoint {
        Endpoint::File(dir) => json!({ "datastore": format!("file:{}", absolute(dir).display()) }),
        Endpoint::Etcd(urls) => json!({ "datastore": "etcd", "etcd_host": urls.join(",") }),
    };
    let t = &datastore.tls;
    for (key, path) in
        [("etcd_ca_cert_file", &t.cacert), ("etcd_cert_file", &t.cert), ("etcd_key_file", &t.key)]
    {
        if let Some(p) = path {
            v[key] = json!(absolute(p).display().to_string());
        }
    }
    v["node_name"] = json!(node);
    v
}

/// The plugin runs in the runtime's directory, not the agent's: paths are made absolute.
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Writes the flat file where it differs; true when written.
pub fn ensure_flat_file(
    conf_dir: &Path,
    node: &str,
    datastore: &DatastoreConf,
) -> Result<bool, CniConfError> {
    let path = flat_file_path(conf_dir);
    if let Some(dir) = path.parent() {
        // A failure shows up as the write's error, which names the path.
        let _ = std::fs::create_dir_all(dir);
    }
    let mut bytes = serde_json::to_vec_pretty(&build_flat_file(node, datastore)).unwrap_or_default();
    bytes.push(b'\n');
    write_if_changed(&path, &bytes)
}

/// One freed reservation, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freed {
    pub ip: std::net::IpAddr,
    pub pool: String,
    pub pod: String,
    pub node: String,
    pub why: Reason,
}

/// Frees orphaned reservations once they have been orphaned for the grace period.
#[derive(Debug)]
pub struct IpPoolReconciler {
    grace: Duration,
    tracker: Tracker,
    /// Passes run at most every quarter of the grace period: reading every reservation,
    /// node and pod on each resync of each node would cost the datastore for nothing.
    next: Option<Instant>,
}

impl IpPoolReconciler {
    pub fn new(grace: Duration) -> IpPoolReconciler {
        IpPoolReconciler { grace, tracker: Tracker::default(), next: None }
    }

    /// One pass when one is due: what the cluster says, which reservations are due, free them.
    pub fn reconcile(&mut self, store: &dyn Datastore) -> Result<Vec<Freed>, IpPoolError> {
        let now = Instant::now();
        if self.next.is_some_and(|n| now < n) {
            return Ok(Vec::new());
        }
        self.next = Some(now + self.grace / 4);
        let networks = ippool::networks(store)?;
        if networks.iter().all(|n| n.reservations.is_empty()) {
            self.tracker = Tracker::default();
            return Ok(Vec::new());
        }
        let registry = Registry::new(store);
        let nodes = registry.nodes()?.items.into_iter().map(|n| n.name).collect();
        let pods: BTreeMap<String, String> = registry
            .pods()?
            .items
            .into_iter()
            .map(|p| (format!("{}/{}", p.namespace, p.name), p.node))
            .collect();
        let cluster = Cluster { nodes, pods };
        let all = networks.iter().flat_map(|n| n.reservations.iter());
        let due = self.tracker.due(all, &cluster, Instant::now(), ippool::now_secs(), self.grace);
        let mut freed = Vec::new();
        for (s, why) in due {
            let Some(view) = networks.iter().find(|n| n.network == s.record.network) else { continue };
            if ippool::free(store, view, s)? {
                let r = &s.record;
                let pool = if r.network.is_empty() {
                    r.range.to_string()
                } else {
                    format!("{}/{}", r.network, r.range)
                };
                freed.push(Freed {
                    ip: r.ip,
                    pool,
                    pod: r.holder.pod.clone(),
                    node: r.holder.node.clone(),
                    why,
                });
            }
        }
        Ok(freed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster::EtcdTls;

    #[test]
    fn flat_file_in_whereabouts_keys() {
        let file = DatastoreConf::parse("file:/var/lib/twill/ds", EtcdTls::default()).unwrap();
        assert_eq!(
            build_flat_file("node-1", &file),
            json!({"datastore": "file:/var/lib/twill/ds", "node_name": "node-1"})
        );
        let tls = EtcdTls {
            cacert: Some("/pki/ca.pem".into()),
            cert: Some("/pki/c.pem".into()),
            key: Some("/pki/k.pem".into()),
        };
        let etcd = DatastoreConf::parse("etcd:https://10.0.0.1:2379,https://10.0.0.2:2379", tls).unwrap();
        assert_eq!(
            build_flat_file("node-2", &etcd),
            json!({"datastore": "etcd", "etcd_host": "https://10.0.0.1:2379,https://10.0.0.2:2379",
                   "etcd_ca_cert_file": "/pki/ca.pem", "etcd_cert_file": "/pki/c.pem",
                   "etcd_key_file": "/pki/k.pem", "node_name": "node-2"})
        );
    }

    #[test]
    fn written_once() {
        let dir = std::env::temp_dir().join(format!("twill-agent-wbflat-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let d = DatastoreConf::parse("file:/x", EtcdTls::default()).unwrap();
        assert!(ensure_flat_file(&dir, "n", &d).unwrap());
        assert!(!ensure_flat_file(&dir, "n", &d).unwrap());
        let back: Value = serde_json::from_slice(&std::fs::read(flat_file_path(&dir)).unwrap()).unwrap();
        assert_eq!(back["node_name"], "n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
