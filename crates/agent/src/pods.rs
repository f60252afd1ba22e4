//! This node's pods in the datastore, published from the node's attachment journal (written
//! by the `twill-pod` plugin at ADD, DEL and GC; docs/adr/0012). One reconcile step:
//! - every journal entry whose network namespace still exists becomes (or keeps)
//!   `/twill/pods/NS/NAME` naming this node; entries of one pod (several interfaces or
//!   networks) are one record with all their addresses and the network-status the multus
//!   plugin recorded;
//! - this node's records without a live entry are deleted;
//! - records of nodes that have been absent from the cluster longer than a grace period are
//!   deleted by whichever node notices (a node that comes back publishes its pods again) —
//!   but only while the datastore has been healthy for a TTL: after an outage every node
//!   record may vanish at once, and the nodes' pods are not gone (crate::absence).
//!
//! Every write is compare-and-swap on the record's revision, so two writers never clobber
//! each other; a record held by another live node is left alone and reported.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use cluster::attachment::{Attachment, Journal};

use crate::layout::{self, check_name};
use crate::record::{PodRecord, decode, encode};
use crate::store::{Datastore, Entry, StoreError, Txn};

/// Why a journal entry is not published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skipped {
    /// Its pod namespace or name cannot be a key (`reason` says why).
    InvalidName { container_id: String, name: String, reason: String },
    /// Its network namespace is gone: the container died without a DEL.
    Dead { container_id: String, netns: String },
}

/// The records this node should hold, keyed by `(namespace, name)`, and what was skipped.
pub fn plan(
    node: &str,
    attachments: &[Attachment],
    alive: impl Fn(&str) -> bool,
) -> (BTreeMap<(String, String), PodRecord>, Vec<Skipped>) {
    let mut want: BTreeMap<(String, String), PodRecord> = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut ordered: Vec<&Attachment> = attachments.iter().collect();
    // The earliest attachment of a pod names its container and interface.
    ordered.sort_by(|a, b| (a.since, a.key()).cmp(&(b.since, b.key())));
    for a in ordered {
        let bad = check_name("namespace", &a.namespace).and_then(|()| check_name("pod", &a.name));
        if let Err(e) = bad {
            let name = format!("{}/{}", a.namespace, a.name);
            skipped.push(Skipped::InvalidName {
                container_id: a.container_id.clone(),
                name,
                reason: e.to_string(),
            });
            continue;
        }
        if !alive(&a.netns) {
            skipped.push(Skipped::Dead { container_id: a.container_id.clone(), netns: a.netns.clone() });
            continue;
        }
        let rec = want.entry((a.namespace.clone(), a.name.clone())).or_insert_with(|| PodRecord {
            namespace: a.namespace.clone(),
            name: a.name.clone(),
            node: node.to_string(),
            container_id: a.container_id.clone(),
            ifname: a.ifname.clone(),
            netns: a.netns.clone(),
            network: a.network.clone(),
            since: a.since,
            ..Default::default()
        });
        for ip in &a.ips {
            if !rec.ips.contains(ip) {
                rec.ips.push(*ip);
            }
        }
        rec.annotations.extend(a.annotations.clone());
        // Only a multus attachment carries a status, for every interface it made.
        for status in &a.network_status {
            if !rec.network_status.iter().any(|s| s.interface == status.interface) {
                rec.network_status.push(status.clone());
            }
        }
    }
    (want, skipped)
}

/// What one publishing pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Published {
    pub written: usize,
    pub deleted: usize,
    /// Records held by another live node under the same name.
    pub conflicts: Vec<String>,
    pub skipped: Vec<Skipped>,
    /// Pods of this node now in the datastore.
    pub pods: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum PodsError {
    #[error("read the attachment journal: {0}")]
    Journal(#[from] cluster::attachment::JournalError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Record(#[from] crate::record::RecordError),
}

/// Publishes the node's journal; remembers since when other nodes have been absent.
#[derive(Debug)]
pub struct PodPublisher {
    node: String,
    journal: Journal,
    /// Pod records of an absent node are deleted after this long.
    grace: Duration,
    absent_since: HashMap<String, Instant>,
}

fn netns_alive(path: &str) -> bool {
    !path.is_empty() && Path::new(path).exists()
}

impl PodPublisher {
    pub fn new(node: &str, journal_dir: &Path, grace: Duration) -> PodPublisher {
        PodPublisher {
            node: node.to_string(),
            journal: Journal::new(journal_dir),
            grace,
            absent_since: HashMap::new(),
        }
    }

    /// One pass against `store`; `believe_absence`: absent nodes may be taken for gone.
    pub fn publish(&mut self, store: &dyn Datastore, believe_absence: bool) -> Result<Published, PodsError> {
        let (want, skipped) = plan(&self.node, &self.journal.list()?, netns_alive);
        let listing = store.list(layout::PODS)?;
        let nodes: BTreeSet<String> = store
            .list(layout::NODES)?
            .entries
            .iter()
            .filter_map(|e| e.key.strip_prefix(layout::NODES).map(str::to_string))
            .collect();
        let mut out = Published { skipped, pods: want.len(), ..Published::default() };
        let existing: BTreeMap<&str, &Entry> = listing.entries.iter().map(|e| (e.key.as_str(), e)).collect();
        for ((ns, name), rec) in &want {
            let key = layout::pod_key(ns, name);
            self.put(store, &key, rec, existing.get(key.as_str()).copied(), &nodes, &mut out)?;
        }
        self.delete_stale(store, &listing.entries, &want, &nodes, believe_absence, &mut out)?;
        Ok(out)
    }

    fn put(
        &self,
        store: &dyn Datastore,
        key: &str,
        rec: &PodRecord,
        old: Option<&Entry>,
        nodes: &BTreeSet<String>,
        out: &mut Published,
    ) -> Result<(), PodsError> {
        let value = encode(key, rec)?;
        let txn = match old {
            None => Txn::create(key, &value, None),
            Some(e) if e.value == value => return Ok(()),
            Some(e) => {
                let holder = decode::<PodRecord>(e).map(|r| r.node).unwrap_or_default();
                if holder != self.node && nodes.contains(&holder) {
                    out.conflicts.push(format!("{key} is held by node {holder}"));
                    return Ok(());
                }
                Txn::update(key, e.mod_revision, &value, None)
            }
        };
        // A lost race is settled by the next pass, which re-reads.
        out.written += usize::from(store.txn(&txn)?);
        Ok(())
    }

    /// This node's records without a live attachment, and absent nodes' records after the grace.
    fn delete_stale(
        &mut self,
        store: &dyn Datastore,
        entries: &[Entry],
        want: &BTreeMap<(String, String), PodRecord>,
        nodes: &BTreeSet<String>,
        believe_absence: bool,
        out: &mut Published,
    ) -> Result<(), PodsError> {
        let now = Instant::now();
        self.absent_since.retain(|n, _| !nodes.contains(n));
        for e in entries {
            let Ok(rec) = decode::<PodRecord>(e) else { continue };
            let gone = if rec.node == self.node {
                !want.contains_key(&(rec.namespace.clone(), rec.name.clone()))
            } else if nodes.contains(&rec.node) {
                false
            } else {
                let since = *self.absent_since.entry(rec.node.clone()).or_insert(now);
                believe_absence && now.duration_since(since) >= self.grace
            };
            if gone {
                out.deleted += usize::from(store.txn(&Txn::delete(&e.key, e.mod_revision))?);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn att(id: &str, ns: &str, name: &str, ifname: &str, ip: &str, since: u64) -> Attachment {
        Attachment {
            network: "twill".into(),
            container_id: id.into(),
            ifname: ifname.into(),
            netns: format!("/run/netns/{id}"),
            namespace: ns.into(),
            name: name.into(),
            ips: vec![ip.parse().unwrap()],
            annotations: BTreeMap::new(),
            since,
            network_status: Vec::new(),
        }
    }

    #[test]
    fn attachments_become_one_record_per_pod() {
        let atts = [
            att("c2", "x", "b", "eth0", "10.244.1.3", 5),
            att("c1", "x", "a", "net1", "10.10.0.2", 9),
            att("c1", "x", "a", "eth0", "10.244.1.2", 7),
        ];
        let (want, skipped) = plan("node-1", &atts, |_| true);
        assert!(skipped.is_empty());
        let a = &want[&("x".to_string(), "a".to_string())];
        assert_eq!((a.ifname.as_str(), a.node.as_str(), a.since), ("eth0", "node-1", 7));
        let ips: Vec<String> = a.ips.iter().map(|i| i.to_string()).collect();
        assert_eq!(ips, ["10.244.1.2", "10.10.0.2"], "the first attachment's addresses first");
        assert_eq!(want.len(), 2);
    }

    #[test]
    fn the_multus_attachment_brings_the_network_status() {
        use cluster::NetworkStatus;
        let status = |name: &str, ifname: &str| NetworkStatus {
            name: name.into(),
            interface: ifname.into(),
            ..NetworkStatus::default()
        };
        let mut multus = att("c1", "x", "a", "eth0", "10.244.1.2", 7);
        multus.network = "multus-cni-network".into();
        multus.network_status = vec![status("twill", "eth0"), status("x/data", "net1")];
        let (want, _) = plan("node-1", &[att("c1", "x", "a", "eth0", "10.244.1.2", 7), multus], |_| true);
        let a = &want[&("x".to_string(), "a".to_string())];
        assert_eq!(a.ips.len(), 1, "the cluster network's address once");
        let ifs: Vec<&str> = a.network_status.iter().map(|s| s.interface.as_str()).collect();
        assert_eq!(ifs, ["eth0", "net1"]);
    }

    #[test]
    fn dead_and_misnamed_attachments_are_skipped() {
        let atts =
            [att("c1", "x", "Web_1", "eth0", "10.244.1.2", 1), att("c2", "x", "b", "eth0", "10.244.1.3", 1)];
        let (want, skipped) = plan("node-1", &atts, |netns| !netns.ends_with("c2"));
        assert!(want.is_empty());
        assert!(matches!(&skipped[0], Skipped::InvalidName { name, .. } if name == "x/Web_1"), "{skipped:?}");
        assert!(matches!(&skipped[1], Skipped::Dead { container_id, .. } if container_id == "c2"));
    }
}
