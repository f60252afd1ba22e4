//! Policy semantics as a pure function: may this connection be opened?
//!
//! A connection is allowed iff the source may send it (egress) AND the destination may receive
//! it (ingress). Each side is judged by three tiers in turn:
//! 1. AdminNetworkPolicies whose subject selects the pod, by priority (rules in order): the
//!    first matching rule decides when it is Allow or Deny; Pass skips the rest of the tier;
//! 2. NetworkPolicy: a pod selected by no policy of a direction is open in that direction;
//!    once selected, it accepts only what a rule of a selecting policy allows (rules and
//!    policies add up);
//! 3. only when no NetworkPolicy selects the pod: the BaselineAdminNetworkPolicy's rules, in
//!    order; no match leaves the pod open.
//!
//! The Replies of an allowed connection are always allowed: that is the dataplane's conntrack
//! (`ct state established,related accept`), not a decision made here.

use std::net::IpAddr;

use crate::admin::{Action, Tier, TierRuleRef, admin_port_matches};
use crate::model::{Direction, Family, Pod, Protocol};
use crate::select::port_matches;
use crate::verdict::{Decision, RuleRef, Verdict};
use crate::world::{Endpoint, World};

/// Evaluates a new connection from `from` to `to` on `protocol`/`port`. Between two pods it is
/// judged in the first address family they share (IPv4 first when a pod lists it first); see
/// [`evaluate_family`] to choose.
pub fn evaluate(world: &World, from: &Endpoint, to: &Endpoint, port: u16, protocol: Protocol) -> Verdict {
    let family = connection_family(world, from, to);
    evaluate_family(world, from, to, port, protocol, family)
}

/// [`evaluate`] in a given address family (which ipBlocks see pod addresses of).
pub fn evaluate_family(
    world: &World,
    from: &Endpoint,
    to: &Endpoint,
    port: u16,
    protocol: Protocol,
    family: Family,
) -> Verdict {
    let conn = Conn { world, port, protocol, family };
    let (egress, ingress) = if matches!((from, to), (Endpoint::Pod(a), Endpoint::Pod(b)) if a == b) {
        (Decision::Loopback, Decision::Loopback)
    } else {
        (conn.egress(from, to), conn.ingress(from, to))
    };
    Verdict { from: from.clone(), to: to.clone(), protocol, port, family, egress, ingress }
}

struct Conn<'w> {
    world: &'w World,
    port: u16,
    protocol: Protocol,
    family: Family,
}

impl<'w> Conn<'w> {
    fn egress(&self, from: &Endpoint, to: &Endpoint) -> Decision {
        let Endpoint::Pod(r) = from else { return Decision::NotAPod };
        let Some(src) = self.world.pod(r) else { return Decision::UnknownPod };
        let (peer, peer_ip) = self.resolve(to);
        // Named ports resolve against the destination: here the peer.
        self.side(src, Direction::Egress, peer, peer_ip, peer)
    }

    fn ingress(&self, from: &Endpoint, to: &Endpoint) -> Decision {
        let Endpoint::Pod(r) = to else { return Decision::NotAPod };
        let Some(dst) = self.world.pod(r) else { return Decision::UnknownPod };
        if let Endpoint::Ip(ip) = from
            && self.world.node(&dst.node).is_some_and(|n| n.ips.contains(ip))
        {
            return Decision::FromOwnNode;
        }
        let (peer, peer_ip) = self.resolve(from);
        self.side(dst, Direction::Ingress, peer, peer_ip, Some(dst))
    }

    /// The other end as a pod (when it is one) and its address in this family.
    fn resolve(&self, end: &Endpoint) -> (Option<&'w Pod>, Option<IpAddr>) {
        match end {
            Endpoint::Ip(ip) => (None, Some(*ip)),
            Endpoint::Pod(r) => {
                let pod = self.world.pod(r);
                (pod, pod.and_then(|p| p.ip(self.family)))
            }
        }
    }

    /// The decision of the tiers about `pod` in `dir` and `peer`: admin, then NetworkPolicy,
    /// then (for pods no NetworkPolicy selects) the baseline.
    fn side(
        &self,
        pod: &Pod,
        dir: Direction,
        peer: Option<&Pod>,
        peer_ip: Option<IpAddr>,
        destination: Option<&Pod>,
    ) -> Decision {
        let end = Other { peer, peer_ip, destination };
        let passed = match self.tier_rule(Tier::Admin, pod, dir, &end) {
            Some(rule) if rule.action != Action::Pass => return Decision::Tier(rule),
            passed => passed,
        };
        let mut decision = self.network_policy(pod, dir, &end);
        if decision == Decision::NotSelected
            && let Some(rule) = self.tier_rule(Tier::Baseline, pod, dir, &end)
        {
            decision = Decision::Tier(rule);
        }
        match passed {
            Some(by) => Decision::Passed { by, then: Box::new(decision) },
            None => decision,
        }
    }

    /// The first rule of `tier` (policies in order, rules in order) that matches.
    fn tier_rule(&self, tier: Tier, pod: &Pod, dir: Direction, end: &Other) -> Option<TierRuleRef> {
        for policy in self.world.admin_selecting(tier, pod) {
            for (index, rule) in policy.rules(dir).iter().enumerate() {
                let peer_ok =
                    rule.peers.iter().any(|p| self.world.admin_peer_matches(p, end.peer, end.peer_ip));
                let port_ok = rule.ports.is_empty()
                    || rule
                        .ports
                        .iter()
                        .any(|pp| admin_port_matches(pp, self.protocol, self.port, end.destination));
                if peer_ok && port_ok {
                    return Some(policy.rule_ref(dir, index));
                }
            }
        }
        None
    }

    /// The decision of `pod`'s NetworkPolicies of `dir` about the other end.
    fn network_policy(&self, pod: &Pod, dir: Direction, end: &Other) -> Decision {
        let Other { peer, peer_ip, destination } = *end;
        let selecting = self.world.selecting(pod, dir);
        if selecting.is_empty() {
            return Decision::NotSelected;
        }
        let mut allowed = Vec::new();
        for policy in &selecting {
            for (index, rule) in policy.rules(dir).iter().enumerate() {
                let peer_ok = rule.peers.is_empty()
                    || rule
                        .peers
                        .iter()
                        .any(|p| self.world.peer_matches(&policy.namespace, p, peer, peer_ip));
                let port_ok = rule.ports.is_empty()
                    || rule.ports.iter().any(|pp| port_matches(pp, self.protocol, self.port, destination));
                if peer_ok && port_ok {
                    allowed.push(RuleRef { policy: policy.key(), direction: dir, index });
                }
            }
        }
        match allowed.is_empty() {
            true => Decision::Denied(selecting.iter().map(|p| p.key()).collect()),
            false => Decision::Allowed(allowed),
        }
    }
}

/// The other end of a connection, as one side sees it.
#[derive(Clone, Copy)]
struct Other<'p> {
    peer: Option<&'p Pod>,
    peer_ip: Option<IpAddr>,
    /// The pod receiving the connection (named ports resolve against it).
    destination: Option<&'p Pod>,
}

/// An address endpoint fixes the family; two pods use the first family both have.
fn connection_family(world: &World, from: &Endpoint, to: &Endpoint) -> Family {
    match (from, to) {
        (Endpoint::Ip(ip), _) | (_, Endpoint::Ip(ip)) => Family::of(*ip),
        (Endpoint::Pod(a), Endpoint::Pod(b)) => {
            let families = |r| -> Vec<Family> {
                world.pod(r).map(|p| p.ips.iter().map(|ip| Family::of(*ip)).collect()).unwrap_or_default()
            };
            let (a, b) = (families(a), families(b));
            a.iter().find(|f| b.contains(f)).or(a.first()).or(b.first()).copied().unwrap_or(Family::V4)
        }
    }
}
