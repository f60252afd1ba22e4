//! When a node missing from the datastore counts as gone (docs/adr/0015).
//!
//! A node's record lives under its lease, so it vanishes when the node stops renewing — a
//! dead machine — but also when the datastore itself could not hear anyone for a while:
//! etcd frozen (SIGSTOP, a stalled disk, a VM paused) expires every lease at once when it
//! resumes, and every live node joins again a moment later. Withdrawing the routes to all
//! peers on such a mass expiry cuts every running pod off until they are back.
//!
//! So an agent believes a record's absence only once the datastore has been answering it
//! promptly for a whole hold period, one lease TTL: a live peer renews every TTL/3 and, once a
//! renewal failed, retries every second, so by then it has rejoined. Until then the vanished
//! peer is *held*: its routes stay (unless another node now claims its subnet). A node that
//! dies while the datastore is healthy is withdrawn as before, as soon as its lease expires.
//!
//! [`DatastoreHealth`] keeps the clock. An outage is a failed call, or a silence longer than
//! half a TTL between two answers: a call that hung through the whole outage and then
//! succeeded leaves no failure behind, but it leaves the silence. A healthy agent hears from
//! the datastore at least every TTL/3 (its renewals) plus the length of a pass, and a lease
//! can only have expired in an outage longer than 2·TTL/3, so TTL/2 tells the two apart.
//! [`plan_peers`] decides, purely, which peers stay programmed.

use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::backend::Peer;
use crate::subnet::overlaps;

/// How this agent has seen the datastore lately.
#[derive(Debug, Clone)]
pub struct DatastoreHealth {
    /// A longer silence between two answers counts as an outage.
    quiet_limit: Duration,
    last_answer: Instant,
    failing: bool,
    /// Start of the current run of prompt answers.
    healthy_since: Instant,
}

impl DatastoreHealth {
    /// A datastore that answered at `now` (the agent just joined), with a lease TTL of `ttl`.
    pub fn new(ttl: Duration, now: Instant) -> DatastoreHealth {
        DatastoreHealth { quiet_limit: ttl / 2, last_answer: now, failing: false, healthy_since: now }
    }

    /// A call answered at `now` (a "lease not found" is an answer too).
    pub fn answered(&mut self, now: Instant) {
        if self.failing || now.saturating_duration_since(self.last_answer) > self.quiet_limit {
            self.healthy_since = now;
        }
        self.failing = false;
        self.last_answer = self.last_answer.max(now);
    }

    /// A call failed: no answer, or an error.
    pub fn failed(&mut self) {
        self.failing = true;
    }

    /// How long the datastore has been answering promptly; zero while it fails or is silent.
    pub fn healthy_for(&self, now: Instant) -> Duration {
        if self.failing || now.saturating_duration_since(self.last_answer) > self.quiet_limit {
            return Duration::ZERO;
        }
        now.saturating_duration_since(self.healthy_since)
    }
}

/// The peers to program after a read of the node records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerPlan {
    /// Everyone with a record, then the held peers.
    pub peers: Vec<Peer>,
    /// Peers without a record whose routes stay for now.
    pub held: Vec<String>,
    /// Peers whose routes go.
    pub gone: Vec<Peer>,
}

/// `fresh`: the peers whose records were just read; `programmed`: the peers programmed so
/// far (held ones included); `mine`: this node's subnets; `believe_absence`: the datastore
/// has been healthy for the hold period. A programmed peer without a record is held unless
/// its absence is believed, or a node with a record (this one included) claims a subnet
/// that overlaps its own — then the route must go to the new owner.
pub fn plan_peers(fresh: Vec<Peer>, programmed: &[Peer], mine: &[IpNet], believe_absence: bool) -> PeerPlan {
    let mut claimed: Vec<IpNet> = mine.to_vec();
    claimed.extend(fresh.iter().flat_map(|p| [Some(p.subnet), p.subnet6]).flatten());
    let mut plan = PeerPlan { peers: fresh, ..PeerPlan::default() };
    for old in programmed {
        if plan.peers.iter().any(|p| p.name == old.name) {
            continue;
        }
        let taken = [Some(old.subnet), old.subnet6]
            .into_iter()
            .flatten()
            .any(|s| claimed.iter().any(|c| overlaps(c, &s)));
        if believe_absence || taken {
            plan.gone.push(old.clone());
        } else {
            plan.held.push(old.name.clone());
            plan.peers.push(old.clone());
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(6);

    fn peer(name: &str, subnet: &str) -> Peer {
        Peer {
            name: name.into(),
            node_ip: "10.100.0.11".parse().unwrap(),
            node_ip6: None,
            subnet: subnet.parse().unwrap(),
            subnet6: None,
            vtep_mac: None,
            bgp: None,
        }
    }

    #[test]
    fn prompt_answers_build_up_health_and_failures_reset_it() {
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_millis(n);
        let mut h = DatastoreHealth::new(TTL, t0);
        h.answered(s(2000));
        h.answered(s(4000));
        assert_eq!(h.healthy_for(s(4500)), Duration::from_millis(4500));
        h.failed();
        assert_eq!(h.healthy_for(s(5000)), Duration::ZERO);
        h.answered(s(6000));
        assert_eq!(h.healthy_for(s(7000)), Duration::from_secs(1), "the clock restarts at the first answer");
    }

    #[test]
    fn a_call_that_hung_through_an_outage_restarts_the_clock() {
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_millis(n);
        let mut h = DatastoreHealth::new(TTL, t0);
        h.answered(s(1000));
        assert_eq!(h.healthy_for(s(4500)), Duration::ZERO, "silent for longer than TTL/2");
        // Answered at last, without any failure on record.
        h.answered(s(9000));
        assert_eq!(h.healthy_for(s(9500)), Duration::from_millis(500));
        h.answered(s(11_900));
        assert_eq!(h.healthy_for(s(12_000)), Duration::from_secs(3), "a silence of TTL/3 is normal");
    }

    #[test]
    fn vanished_peers_are_held_until_their_absence_is_believed() {
        let programmed = [peer("node-2", "10.244.2.0/24"), peer("node-3", "10.244.3.0/24")];
        let fresh = vec![peer("node-2", "10.244.2.0/24")];
        let mine = ["10.244.1.0/24".parse().unwrap()];
        let held = plan_peers(fresh.clone(), &programmed, &mine, false);
        assert_eq!(held.peers, programmed.to_vec());
        assert_eq!((held.held, held.gone), (vec!["node-3".to_string()], vec![]));
        let gone = plan_peers(fresh.clone(), &programmed, &mine, true);
        assert_eq!(gone.peers, fresh);
        assert_eq!((gone.held.len(), gone.gone[0].name.as_str()), (0, "node-3"));
    }

    #[test]
    fn a_held_peer_whose_subnet_someone_claims_goes_at_once() {
        let programmed = [peer("node-2", "10.244.2.0/24"), peer("node-3", "10.244.3.0/24")];
        let fresh = vec![peer("node-4", "10.244.2.0/23")];
        let plan = plan_peers(fresh, &programmed, &[], false);
        let names: Vec<&str> = plan.peers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["node-4"]);
        assert_eq!(plan.gone.len(), 2);
        let mine = ["10.244.3.0/24".parse().unwrap()];
        let plan = plan_peers(Vec::new(), &programmed[1..], &mine, false);
        assert!(plan.peers.is_empty() && plan.gone.len() == 1, "this node's own subnet: {plan:?}");
    }

    #[test]
    fn a_peer_back_under_the_same_name_takes_its_new_record() {
        let programmed = [peer("node-2", "10.244.2.0/24")];
        let fresh = vec![peer("node-2", "10.244.5.0/24")];
        let plan = plan_peers(fresh.clone(), &programmed, &[], false);
        assert_eq!((plan.peers, plan.held.len(), plan.gone.len()), (fresh, 0, 0));
    }
}
