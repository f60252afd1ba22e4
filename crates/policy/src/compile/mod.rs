//! The nftables compiler: the policies that touch one node's pods, as ONE `inet` table of
//! fixed shape whose contents are set elements only.
//!
//! Layout (docs/policy.md has the whole story):
//! - base chains on the `forward` hook (pod to pod, across nodes and — with br_netfilter —
//!   through the bridge) and on `input` (what pods send to the node itself); each first
//!   accepts `ct state established,related` (replies of allowed connections), lets IPv6
//!   neighbour discovery through and drops `ct state invalid`;
//! - verdict maps keyed by the address of every local pod some policy isolates
//!   (`ip daddr vmap @ingress_dispatch4`) jump to the direction's filter chain; pods no policy
//!   selects are not in the maps and stay open;
//! - the filter chain asks two concatenated interval sets per family — `pod . peer` for rules
//!   without ports and `pod . peer . l4proto . port` for the others (endPort ranges, named
//!   ports resolved) — and drops what neither holds.
//!
//! Every lookup is one set lookup, so per-packet cost grows neither with peers nor with
//! policies, and the number of sets and chains is constant: nf_tables keeps a table's sets in
//! a list, and 30,000 per-rule sets took 90 s to load here. Since the shape never changes,
//! every update after the first is an element diff ([`update_batch`]).
//!
//! Egress and ingress are two base chains on the same hook: `accept` ends only its own base
//! chain, so a packet must pass both, and `drop` in either is final.

mod allow;
mod boxes;
mod intervals;
mod ruleset;
mod update;

use std::collections::BTreeSet;
use std::net::IpAddr;

pub use ruleset::{Chain, FAMILY, Ruleset, Set, TABLE};
pub use update::{apply_batch, delete_batch, update_batch};

use crate::model::{Direction, Family, Pod, PodRef};
use crate::world::World;
use allow::{Allowance, Allowances};
use intervals::render;
use ruleset::quote;

const FAMILIES: [Family; 2] = [Family::V4, Family::V6];
const DIRECTIONS: [Direction; 2] = [Direction::Ingress, Direction::Egress];

/// Compiles the ruleset for a node whose pods are `node_pods` (pods not in the world are
/// ignored).
pub fn compile(world: &World, node_pods: &[PodRef]) -> Ruleset {
    let mut locals: Vec<&Pod> = node_pods.iter().filter_map(|r| world.pod(r)).collect();
    locals.sort_by_key(|p| p.key());
    locals.dedup_by_key(|p| p.key());
    let mut allowances = Allowances::new(world);
    let mut sets = Vec::new();
    for dir in DIRECTIONS {
        let mut elements = Elements::default();
        // An address held by two pods is a bug elsewhere; the first pod keeps it.
        let mut seen: BTreeSet<IpAddr> = BTreeSet::new();
        for pod in &locals {
            let policies = world.selecting(pod, dir);
            if policies.is_empty() {
                continue;
            }
            for family in FAMILIES {
                let ips: Vec<IpAddr> =
                    pod.ips.iter().copied().filter(|ip| Family::of(*ip) == family && seen.insert(*ip)).collect();
                if ips.is_empty() {
                    continue;
                }
                let allowance = allowances.of(pod, dir, &policies, family);
                elements.add(pod, dir, family, &ips, &allowance);
            }
        }
        sets.extend(elements.into_sets(dir));
    }
    Ruleset { sets, chains: chains() }
}

/// The elements of one direction's sets and map, per family (index 0: IPv4, 1: IPv6).
#[derive(Default)]
struct Elements {
    dispatch: [Vec<String>; 2],
    any: [Vec<String>; 2],
    ports: [Vec<String>; 2],
}

impl Elements {
    fn add(&mut self, pod: &Pod, dir: Direction, family: Family, ips: &[IpAddr], allowance: &Allowance) {
        let f = usize::from(family == Family::V6);
        let boxes = allowance.boxes.disjoint();
        for ip in ips {
            let name = quote(&pod.key().to_string());
            self.dispatch[f].push(format!("{ip} comment {name} : jump {}", filter_chain(dir)));
            for (lo, hi) in &allowance.any {
                self.any[f].push(format!("{ip} . {}", render(family, *lo, *hi)));
            }
            for (proto, (lo, hi), (first, last)) in &boxes {
                let ports = if first == last { first.to_string() } else { format!("{first}-{last}") };
                self.ports[f].push(format!("{ip} . {} . {} . {ports}", render(family, *lo, *hi), proto.as_nft()));
            }
        }
    }

    fn into_sets(self, dir: Direction) -> Vec<Set> {
        let Elements { dispatch, any, ports } = self;
        let mut out = Vec::new();
        for ((family, dispatch), (any, ports)) in FAMILIES.into_iter().zip(dispatch).zip(any.into_iter().zip(ports)) {
            let addr = addr_type(family);
            out.push(Set::new(dispatch_map(dir, family), &format!("{addr} : verdict"), false, dispatch));
            out.push(Set::new(set_name(dir, "any", family), &format!("{addr} . {addr}"), true, any));
            let typ = format!("{addr} . {addr} . inet_proto . inet_service");
            out.push(Set::new(set_name(dir, "ports", family), &typ, true, ports));
        }
        out
    }
}

fn addr_type(family: Family) -> &'static str {
    match family {
        Family::V4 => "ipv4_addr",
        Family::V6 => "ipv6_addr",
    }
}

fn suffix(family: Family) -> &'static str {
    match family {
        Family::V4 => "4",
        Family::V6 => "6",
    }
}

/// `ingress_dispatch4`, ...: local pod address → its direction's filter chain.
fn dispatch_map(dir: Direction, family: Family) -> String {
    format!("{}_dispatch{}", dir.field(), suffix(family))
}

/// `ingress_any4`, `egress_ports6`, ...
fn set_name(dir: Direction, what: &str, family: Family) -> String {
    format!("{}_{what}{}", dir.field(), suffix(family))
}

fn filter_chain(dir: Direction) -> String {
    format!("{}_filter", dir.field())
}

/// The base chains and the two filter chains.
fn chains() -> Vec<Chain> {
    let base = |name: &str, hook: &str, priority: &str, dir: Direction| {
        let field = match dir {
            Direction::Ingress => "daddr",
            Direction::Egress => "saddr",
        };
        let rules = vec![
            "ct state established,related accept".to_string(),
            // Neighbour discovery is how pods find each other at all, and conntrack does not
            // track it: it must pass before the invalid-state drop.
            "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept"
                .to_string(),
            "ct state invalid drop".to_string(),
            format!("ip {field} vmap @{}", dispatch_map(dir, Family::V4)),
            format!("ip6 {field} vmap @{}", dispatch_map(dir, Family::V6)),
        ];
        let hook = Some(format!("type filter hook {hook} priority {priority}; policy accept;"));
        Chain { name: name.into(), hook, comment: None, rules }
    };
    let filter = |dir: Direction| {
        // The local pod first: the sets are keyed `pod . peer`.
        let (pod, peer) = match dir {
            Direction::Ingress => ("daddr", "saddr"),
            Direction::Egress => ("saddr", "daddr"),
        };
        let mut rules = Vec::new();
        for (family, kw) in [(Family::V4, "ip"), (Family::V6, "ip6")] {
            rules.push(format!("{kw} {pod} . {kw} {peer} @{} accept", set_name(dir, "any", family)));
            rules.push(format!(
                "{kw} {pod} . {kw} {peer} . meta l4proto . th dport @{} accept",
                set_name(dir, "ports", family)
            ));
        }
        rules.push(format!("counter drop comment {}", quote(&format!("no NetworkPolicy {dir} rule allows it"))));
        let comment = Some(format!("pods isolated for {dir}: what their policies allow"));
        Chain { name: filter_chain(dir), hook: None, comment, rules }
    };
    vec![
        base("forward_egress", "forward", "filter", Direction::Egress),
        base("forward_ingress", "forward", "filter + 1", Direction::Ingress),
        base("input_egress", "input", "filter", Direction::Egress),
        filter(Direction::Egress),
        filter(Direction::Ingress),
    ]
}
