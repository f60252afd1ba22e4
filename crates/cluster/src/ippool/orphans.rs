//! Which reservations nobody will ever free: what twilld's reconciler looks for, where
//! Whereabouts runs a CronJob against the Kubernetes API. A reservation is orphaned when
//! - its node is gone (no node record: the node's lease ran out), or
//! - its pod has no record (`/twill/pods/NS/NAME`, published by the pod's node once its
//!   chain finished ADD), or the record places the pod on another node.
//!
//! A pod record appears only after ADD, so a reservation younger than the grace period is
//! never judged; and one must look orphaned, unchanged, for a whole grace period before it
//! is freed, so an agent that is merely slow to publish, or a datastore read that raced a
//! write, frees nothing. Pod references that cannot be record keys (no namespace, or not
//! Kubernetes names) are only judged by their node.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use super::{IpReservation, Stored};
use crate::layout::check_name;

/// Why a reservation is orphaned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    NodeGone,
    PodGone,
    PodElsewhere { node: String },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::NodeGone => f.write_str("its node is gone"),
            Reason::PodGone => f.write_str("its pod has no record"),
            Reason::PodElsewhere { node } => write!(f, "its pod runs on {node}"),
        }
    }
}

/// What the cluster says: the nodes, and each pod's node by `NAMESPACE/NAME`.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    pub nodes: BTreeSet<String>,
    pub pods: BTreeMap<String, String>,
}

/// Why `r` is orphaned, if it is.
pub fn reason(r: &IpReservation, c: &Cluster) -> Option<Reason> {
    let h = &r.holder;
    if !c.nodes.contains(&h.node) {
        return Some(Reason::NodeGone);
    }
    let keyable = h
        .pod
        .split_once('/')
        .is_some_and(|(ns, name)| check_name("namespace", ns).is_ok() && check_name("pod", name).is_ok());
    if !keyable {
        return None;
    }
    match c.pods.get(&h.pod) {
        None => Some(Reason::PodGone),
        Some(node) if *node != h.node => Some(Reason::PodElsewhere { node: node.clone() }),
        Some(_) => None,
    }
}

/// Remembers since when each reservation has looked orphaned.
#[derive(Debug, Default)]
pub struct Tracker {
    seen: HashMap<String, (u64, Instant)>,
}

impl Tracker {
    /// The reservations that are orphaned now, were reserved more than `grace` ago
    /// (`now_secs`, Unix seconds), and have looked orphaned, unchanged, for `grace` (`now`,
    /// monotonic). Reservations no longer orphaned are forgotten.
    pub fn due<'a>(
        &mut self,
        all: impl IntoIterator<Item = &'a Stored>,
        cluster: &Cluster,
        now: Instant,
        now_secs: u64,
        grace: Duration,
    ) -> Vec<(&'a Stored, Reason)> {
        let mut seen = HashMap::new();
        let mut out = Vec::new();
        for s in all {
            let Some(why) = reason(&s.record, cluster) else { continue };
            if now_secs.saturating_sub(s.record.since) < grace.as_secs() {
                continue;
            }
            let first = match self.seen.get(&s.key) {
                Some((rev, at)) if *rev == s.mod_revision => *at,
                _ => now,
            };
            seen.insert(s.key.clone(), (s.mod_revision, first));
            if now.duration_since(first) >= grace {
                out.push((s, why));
            }
        }
        self.seen = seen;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ippool::Holder;

    fn stored(pod: &str, node: &str, since: u64, rev: u64) -> Stored {
        let record = IpReservation {
            ip: "10.9.0.5".parse().unwrap(),
            network: String::new(),
            range: "10.9.0.0/24".parse().unwrap(),
            holder: Holder {
                pod: pod.into(),
                container_id: "c".into(),
                ifname: "net1".into(),
                node: node.into(),
                cni_network: "n".into(),
            },
            since,
        };
        Stored { key: format!("/k/{pod}"), mod_revision: rev, record }
    }

    fn cluster() -> Cluster {
        Cluster {
            nodes: ["node-1".to_string(), "node-2".to_string()].into(),
            pods: [("default/web".to_string(), "node-1".to_string())].into(),
        }
    }

    #[test]
    fn reasons() {
        let c = cluster();
        assert_eq!(reason(&stored("default/web", "node-1", 0, 1).record, &c), None);
        assert_eq!(reason(&stored("default/web", "node-9", 0, 1).record, &c), Some(Reason::NodeGone));
        assert_eq!(reason(&stored("default/gone", "node-1", 0, 1).record, &c), Some(Reason::PodGone));
        assert_eq!(
            reason(&stored("default/web", "node-2", 0, 1).record, &c),
            Some(Reason::PodElsewhere { node: "node-1".into() })
        );
        // Not a record key: only the node is judged.
        assert_eq!(reason(&stored("podman_ctr", "node-1", 0, 1).record, &c), None);
        assert_eq!(reason(&stored("/", "node-9", 0, 1).record, &c), Some(Reason::NodeGone));
    }

    #[test]
    fn due_after_a_whole_grace_period_unchanged() {
        let c = cluster();
        let grace = Duration::from_secs(10);
        let t0 = Instant::now();
        let mut t = Tracker::default();
        let old = stored("default/gone", "node-1", 100, 7);
        let young = stored("default/new", "node-1", 195, 8);
        let both = [old.clone(), young.clone()];
        assert!(t.due(&both, &c, t0, 200, grace).is_empty(), "first sighting starts the clock");
        assert!(t.due(&both, &c, t0 + Duration::from_secs(9), 209, grace).is_empty());
        let due = t.due(&both, &c, t0 + Duration::from_secs(10), 210, grace);
        assert_eq!(due.iter().map(|(s, _)| s.key.as_str()).collect::<Vec<_>>(), ["/k/default/gone"]);
        // Rewritten meanwhile (taken over): the clock starts again.
        let changed = [stored("default/gone", "node-1", 100, 9)];
        assert!(t.due(&changed, &c, t0 + Duration::from_secs(11), 211, grace).is_empty());
        // Back to healthy: forgotten.
        let healthy = [stored("default/web", "node-1", 100, 9)];
        assert!(t.due(&healthy, &c, t0 + Duration::from_secs(30), 230, grace).is_empty());
        assert!(t.seen.is_empty());
    }
}
