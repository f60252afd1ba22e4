//! What an isolated local pod may receive (ingress) or send (egress): the union of the rules of
//! every policy selecting it, as peer ranges allowed for all traffic plus (peer × port) boxes.
//! The part of a rule that does not depend on the local pod is computed once and cached.

use std::collections::HashMap;

use super::boxes::{AddrRange, Boxes, PortRange};
use super::intervals::{AddrRanges, full, merge, num};
use crate::model::{Direction, Family, NetworkPolicy, Peer, Pod, PolicyRef, PortSpec, Protocol, Rule};
use crate::world::World;

/// One pod's allowance in one direction and family.
#[derive(Debug, Default)]
pub struct Allowance {
    /// Peers allowed on every protocol and port (rules without `ports`).
    pub any: Vec<AddrRange>,
    pub boxes: Boxes,
}

/// A rule's contribution that is the same for every pod it applies to.
#[derive(Debug, Default)]
struct RuleAllow {
    any: Vec<AddrRange>,
    boxes: Vec<(Protocol, AddrRange, PortRange)>,
    /// Ingress named ports resolve against each pod: these peers, those names.
    peers: Vec<AddrRange>,
    named: Vec<(Protocol, String)>,
}

type RuleKey = (PolicyRef, Direction, usize, Family);

/// Computes allowances, remembering each rule's pod-independent part.
pub struct Allowances<'w> {
    world: &'w World,
    rules: HashMap<RuleKey, RuleAllow>,
}

impl<'w> Allowances<'w> {
    pub fn new(world: &'w World) -> Allowances<'w> {
        Allowances { world, rules: HashMap::new() }
    }

    /// The allowance of `pod`, selected in `dir` by `policies`, in `family`.
    pub fn of(
        &mut self,
        pod: &Pod,
        dir: Direction,
        policies: &[&NetworkPolicy],
        family: Family,
    ) -> Allowance {
        let mut out = Allowance::default();
        for policy in policies {
            for (index, rule) in policy.rules(dir).iter().enumerate() {
                let key = (policy.key(), dir, index, family);
                let world = self.world;
                let ra =
                    self.rules.entry(key).or_insert_with(|| rule_allow(world, policy, dir, rule, family));
                out.any.extend_from_slice(&ra.any);
                for (proto, peers, ports) in &ra.boxes {
                    out.boxes.add(*proto, *peers, *ports);
                }
                for (proto, name) in &ra.named {
                    if let Some(port) = pod.named_port(name, *proto) {
                        ra.peers.iter().for_each(|peers| out.boxes.add(*proto, *peers, (port, port)));
                    }
                }
            }
        }
        out.any = merge(out.any);
        out
    }
}

fn rule_allow(
    world: &World,
    policy: &NetworkPolicy,
    dir: Direction,
    rule: &Rule,
    family: Family,
) -> RuleAllow {
    let peers = peer_ranges(world, policy, rule, family);
    let mut ra = RuleAllow::default();
    if rule.ports.is_empty() {
        ra.any = peers;
        return ra;
    }
    for pp in &rule.ports {
        let ports = match &pp.port {
            None => (0, u16::MAX),
            Some(PortSpec::Number(n)) => (*n, *n),
            Some(PortSpec::Range(first, last)) => (*first, *last),
            Some(PortSpec::Named(name)) if dir == Direction::Ingress => {
                ra.named.push((pp.protocol, name.clone()));
                continue;
            }
            Some(PortSpec::Named(name)) => {
                // Egress: the destination's own port; only matching destinations are listed.
                for (dest, ip) in destinations(world, policy, rule, family) {
                    if let Some(port) = dest.named_port(name, pp.protocol) {
                        ra.boxes.push((pp.protocol, (ip, ip), (port, port)));
                    }
                }
                continue;
            }
        };
        ra.boxes.extend(peers.iter().map(|p| (pp.protocol, *p, ports)));
    }
    ra.peers = peers;
    ra
}

/// The addresses of `family` a rule's peers match: all of them without peers, else the pods
/// they select and their ipBlocks (except excluded).
fn peer_ranges(world: &World, policy: &NetworkPolicy, rule: &Rule, family: Family) -> Vec<AddrRange> {
    if rule.peers.is_empty() {
        return vec![full(family)];
    }
    let mut ranges = AddrRanges::default();
    for peer in &rule.peers {
        match peer {
            Peer::Pods { namespaces, pods } => {
                let selected = world.peer_pods(&policy.namespace, namespaces.as_ref(), pods.as_ref());
                for ip in selected.flat_map(|p| p.ips.iter()).filter(|ip| Family::of(**ip) == family) {
                    ranges.add_ip(*ip);
                }
            }
            Peer::IpBlock(block) if Family::of(block.cidr.addr()) == family => ranges.add_block(block),
            Peer::IpBlock(_) => {}
        }
    }
    ranges.merged()
}

/// Every pod of the world (with its address of `family`) that a rule's peers match.
fn destinations<'w>(
    world: &'w World,
    policy: &NetworkPolicy,
    rule: &Rule,
    family: Family,
) -> Vec<(&'w Pod, u128)> {
    let mut out = Vec::new();
    for pod in world.pods() {
        for ip in pod.ips.iter().copied().filter(|ip| Family::of(*ip) == family) {
            let matched = rule.peers.is_empty()
                || rule
                    .peers
                    .iter()
                    .any(|peer| world.peer_matches(&policy.namespace, peer, Some(pod), Some(ip)));
            if matched {
                out.push((pod, num(ip)));
            }
        }
    }
    out
}
