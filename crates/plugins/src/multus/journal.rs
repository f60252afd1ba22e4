//! The pod's network-status reaches the cluster through the node's attachment journal, the
//! way twill-pod registers pods (docs/adr/0012): at ADD multus records its own attachment —
//! the pod, the cluster network's addresses and the network-status of every interface — and
//! twilld publishes it in the pod's record. DEL and GC remove it. Only local files are
//! touched, so a datastore outage never fails or slows these verbs.
//!
//! The journal is `journalDir` (and `agentSocket`) from multus's config, else the one the
//! cluster network's `twill-pod` plugin writes to — on a twill node that is twilld's.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use cluster::NetworkStatus;
use cluster::attachment::{Attachment, Journal, notify};
use cni_spec::{CniResult, Error};
use serde_json::{Map, Value};

use super::cache::Entry;
use super::conf::MultusConf;
use super::plan::Delegate;

/// The cluster network's configuration among an attachment's delegates.
pub fn cluster_config(delegates: &[Delegate]) -> Option<&Map<String, Value>> {
    delegates.iter().find(|d| d.cluster).map(|d| &d.config)
}

/// A journal and the agent to nudge after a change.
#[derive(Debug, Clone)]
pub struct Sink {
    journal: Journal,
    socket: Option<PathBuf>,
}

fn abs(v: Option<&Value>) -> Option<PathBuf> {
    v.and_then(Value::as_str).map(PathBuf::from).filter(|p| p.is_absolute())
}

/// Where to record, if anywhere: `journalDir`, else the cluster network's twill-pod's.
pub fn locate(conf: &MultusConf, cluster: Option<&Map<String, Value>>) -> Option<Sink> {
    if let Some(dir) = &conf.journal_dir {
        return Some(Sink { journal: Journal::new(dir), socket: conf.agent_socket.clone() });
    }
    let cluster = cluster?;
    let plugins = match cluster.get("plugins") {
        Some(Value::Array(p)) => p.iter().filter_map(Value::as_object).collect::<Vec<_>>(),
        _ => vec![cluster],
    };
    let pod = plugins.into_iter().find(|p| p.get("type").and_then(Value::as_str) == Some("twill-pod"))?;
    let dir = abs(pod.get("journalDir"))?;
    Some(Sink { journal: Journal::new(dir), socket: abs(pod.get("agentSocket")) })
}

fn journal_err(e: cluster::attachment::JournalError) -> Error {
    Error::io(format!("multus: {e}"))
}

impl Sink {
    /// Records the attachment with every interface's status.
    pub fn record(
        &self,
        entry: &Entry,
        cluster_result: &CniResult,
        status: Vec<NetworkStatus>,
        annotations: BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let (namespace, name) = entry.pod.split_once('/').unwrap_or(("default", &entry.container_id));
        let since = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let a = Attachment {
            network: entry.network.clone(),
            container_id: entry.container_id.clone(),
            ifname: entry.if_name.clone(),
            netns: entry.netns.clone(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            ips: cluster_result.ips.iter().map(|ip| ip.address.addr()).collect(),
            annotations,
            since,
            network_status: status,
        };
        self.journal.write(&a).map_err(journal_err)?;
        self.nudge();
        Ok(())
    }

    /// Forgets one attachment; false when it was not recorded.
    pub fn forget(&self, network: &str, container_id: &str, ifname: &str) -> Result<bool, Error> {
        let removed = self.journal.remove(network, container_id, ifname).map_err(journal_err)?;
        if removed {
            self.nudge();
        }
        Ok(removed)
    }

    /// Forgets `network`'s attachments that `keep` rejects.
    pub fn retain(&self, network: &str, keep: impl Fn(&str, &str) -> bool) -> Result<(), Error> {
        let mut removed = false;
        for a in self.journal.list().map_err(journal_err)? {
            if a.network == network && !keep(&a.container_id, &a.ifname) {
                removed |=
                    self.journal.remove(&a.network, &a.container_id, &a.ifname).map_err(journal_err)?;
            }
        }
        if removed {
            self.nudge();
        }
        Ok(())
    }

    fn nudge(&self) {
        if let Some(s) = &self.socket {
            notify(s);
        }
    }
}
