//! One chain per (policy, direction) that some local pod is selected by, and the sets of its
//! rules. A rule becomes at most four nft rules, each one or two set lookups, whatever the
//! number of its peers: peers are set elements, not rules.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::intervals::{AddrRanges, merge};
use super::names;
use super::ruleset::{Chain, Set, quote};
use crate::model::{Direction, Family, NetworkPolicy, Peer, Pod, PolicyPort, PortSpec, Protocol, Rule};
use crate::world::World;

const FAMILIES: [(Family, &str); 2] = [(Family::V4, "ip"), (Family::V6, "ip6")];

/// The chain of `policy`'s `dir` rules and the sets they look up. `locals` are the node's
/// pods (named ingress ports resolve against those the policy selects).
pub fn policy_chain(world: &World, policy: &NetworkPolicy, dir: Direction, locals: &[&Pod]) -> (Chain, Vec<Set>) {
    let name = names::policy_chain(&policy.key(), dir);
    let mut chain = Chain { name: name.clone(), hook: None, comment: Some(policy.key().to_string()), rules: Vec::new() };
    let mut sets = Vec::new();
    for (i, rule) in policy.rules(dir).iter().enumerate() {
        let r = RuleCtx { world, policy, dir, rule, prefix: format!("{name}{i}"), tag: quote(&format!("{dir}[{i}]")) };
        r.emit(locals, &mut chain.rules, &mut sets);
    }
    (chain, sets)
}

struct RuleCtx<'a> {
    world: &'a World,
    policy: &'a NetworkPolicy,
    dir: Direction,
    rule: &'a Rule,
    prefix: String,
    tag: String,
}

impl RuleCtx<'_> {
    fn emit(&self, locals: &[&Pod], rules: &mut Vec<String>, sets: &mut Vec<Set>) {
        let has_peers = !self.rule.peers.is_empty();
        let (named, numeric): (Vec<&PolicyPort>, Vec<&PolicyPort>) =
            self.rule.ports.iter().partition(|p| matches!(p.port, Some(PortSpec::Named(_))));
        let numeric_rule = self.rule.ports.is_empty() || !numeric.is_empty();
        // Egress named-port elements already hold only matching destinations.
        if has_peers && (numeric_rule || (self.dir == Direction::Ingress && !named.is_empty())) {
            let peers = self.peer_ranges();
            for (family, _) in FAMILIES {
                let typ = addr_type(family);
                sets.push(Set::new(self.set_name("peers", family), typ, true, peers[&family].elements(family)));
            }
        }
        if numeric_rule {
            let port_match = (!numeric.is_empty()).then(|| {
                let ports = format!("{}_ports", self.prefix);
                sets.push(Set::new(ports.clone(), "inet_proto . inet_service", true, port_elements(&numeric)));
                format!("meta l4proto . th dport @{ports} ")
            });
            let port_match = port_match.unwrap_or_default();
            match has_peers {
                false => rules.push(format!("{port_match}accept comment {}", self.tag)),
                true => rules.extend(FAMILIES.iter().map(|(family, kw)| {
                    let peers = self.set_name("peers", *family);
                    format!("{kw} {} @{peers} {port_match}accept comment {}", self.addr_field(), self.tag)
                })),
            }
        }
        if !named.is_empty() {
            for (family, kw) in FAMILIES {
                let set = self.set_name("named", family);
                let elements = self.named_elements(&named, family, locals);
                let typ = format!("{} . inet_proto . inet_service", addr_type(family));
                sets.push(Set::new(set.clone(), &typ, false, elements));
                let peer_match = match (self.dir, has_peers) {
                    (Direction::Ingress, true) => format!("{kw} saddr @{} ", self.set_name("peers", family)),
                    _ => String::new(),
                };
                rules.push(format!("{peer_match}{kw} daddr . meta l4proto . th dport @{set} accept comment {}", self.tag));
            }
        }
    }

    fn set_name(&self, what: &str, family: Family) -> String {
        let n = if family == Family::V4 { 4 } else { 6 };
        format!("{}_{what}{n}", self.prefix)
    }

    /// The other end's address: the source for ingress, the destination for egress.
    fn addr_field(&self) -> &'static str {
        match self.dir {
            Direction::Ingress => "saddr",
            Direction::Egress => "daddr",
        }
    }

    /// Addresses of every peer: the pods they select and their ipBlocks.
    fn peer_ranges(&self) -> BTreeMap<Family, AddrRanges> {
        let mut out: BTreeMap<Family, AddrRanges> = FAMILIES.iter().map(|(f, _)| (*f, AddrRanges::default())).collect();
        for peer in &self.rule.peers {
            match peer {
                Peer::Pods { namespaces, pods } => {
                    let selected = self.world.peer_pods(&self.policy.namespace, namespaces.as_ref(), pods.as_ref());
                    for ip in selected.flat_map(|p| p.ips.iter()) {
                        out.entry(Family::of(*ip)).or_default().add_ip(*ip);
                    }
                }
                Peer::IpBlock(block) => out.entry(Family::of(block.cidr.addr())).or_default().add_block(block),
            }
        }
        out
    }

    /// `ADDR . PROTO . PORT` for every destination pod and named port that resolves on it.
    fn named_elements(&self, named: &[&PolicyPort], family: Family, locals: &[&Pod]) -> Vec<String> {
        let mut out: Vec<(IpAddr, Protocol, u16)> = Vec::new();
        for (pod, ip) in self.destinations(family, locals) {
            for pp in named {
                if let Some(PortSpec::Named(name)) = &pp.port
                    && let Some(port) = pod.named_port(name, pp.protocol)
                {
                    out.push((ip, pp.protocol, port));
                }
            }
        }
        out.sort();
        out.dedup();
        out.into_iter().map(|(ip, proto, port)| format!("{ip} . {} . {port}", proto.as_nft())).collect()
    }

    /// Pods (with an address of `family`) named ports resolve against: for ingress the local
    /// pods this policy selects, for egress every pod of the world the rule's peers match.
    fn destinations<'w>(&self, family: Family, locals: &[&'w Pod]) -> Vec<(&'w Pod, IpAddr)>
    where
        Self: 'w,
    {
        let with_ips = |p: &'w Pod| p.ips.iter().filter(move |ip| Family::of(**ip) == family).map(move |ip| (p, *ip));
        match self.dir {
            Direction::Ingress => locals
                .iter()
                .filter(|p| p.namespace == self.policy.namespace && self.policy.pod_selector.matches(&p.labels))
                .flat_map(|p| with_ips(p))
                .collect(),
            Direction::Egress => self
                .world
                .pods()
                .flat_map(with_ips)
                .filter(|(p, ip)| {
                    self.rule.peers.is_empty()
                        || self.rule.peers.iter().any(|peer| {
                            self.world.peer_matches(&self.policy.namespace, peer, Some(p), Some(*ip))
                        })
                })
                .collect(),
        }
    }
}

fn addr_type(family: Family) -> &'static str {
    match family {
        Family::V4 => "ipv4_addr",
        Family::V6 => "ipv6_addr",
    }
}

/// `PROTO . PORT` / `PROTO . FIRST-LAST` elements, merged per protocol.
fn port_elements(ports: &[&PolicyPort]) -> Vec<String> {
    let mut by_proto: BTreeMap<Protocol, Vec<(u16, u16)>> = BTreeMap::new();
    for pp in ports {
        let range = match &pp.port {
            None => (0, u16::MAX),
            Some(PortSpec::Number(n)) => (*n, *n),
            Some(PortSpec::Range(first, last)) => (*first, *last),
            Some(PortSpec::Named(_)) => continue,
        };
        by_proto.entry(pp.protocol).or_default().push(range);
    }
    let mut out = Vec::new();
    for (proto, ranges) in by_proto {
        for (first, last) in merge(ranges) {
            out.push(match first == last {
                true => format!("{} . {first}", proto.as_nft()),
                false => format!("{} . {first}-{last}", proto.as_nft()),
            });
        }
    }
    out
}
