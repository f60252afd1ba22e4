//! The nftables compiler: the policies that touch one node's pods, as ONE `inet` table.
//!
//! Layout (docs/policy.md has the whole story):
//! - base chains on the `forward` hook (pod to pod, across nodes and — with br_netfilter —
//!   through the bridge) and on `input` (what pods send to the node itself); each first
//!   accepts `ct state established,related` (replies of allowed connections), lets IPv6
//!   neighbour discovery through and drops `ct state invalid`;
//! - verdict maps keyed by the address of every local pod some policy isolates
//!   (`ip daddr vmap @ingress_dispatch4`) jump to the chain of the pod's group: pods selected
//!   by the same policies share it (see [`groups`]). Pods no policy selects are not in the
//!   maps and stay open;
//! - a group chain asks two interval sets per family — peers allowed everything (rules without
//!   `ports`) and `peer . l4proto . port` boxes (endPort ranges, named ports resolved) — and
//!   drops what neither holds.
//!
//! A packet costs one map lookup and at most four set lookups, whatever the number of peers or
//! policies. Sets are per group, not per rule: nf_tables keeps a table's sets in a list, and
//! 30,000 per-rule sets took 90 s to load here. Peers coming and going change elements only
//! ([`update_batch`]); a new group (a new combination of policies on the node) changes the
//! shape and needs [`apply_batch`].
//!
//! Egress and ingress are two base chains on the same hook: `accept` ends only its own base
//! chain, so a packet must pass both, and `drop` in either is final.

mod allow;
mod boxes;
mod groups;
mod intervals;
mod ruleset;
mod update;

use std::collections::BTreeSet;
use std::net::IpAddr;

pub use ruleset::{Chain, FAMILY, Ruleset, Set, TABLE};
pub use update::{apply_batch, delete_batch, update_batch};

use crate::model::{Direction, Family, Pod, PodRef};
use crate::world::World;
use allow::Allowances;
use groups::{Group, GroupKey};
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
    let mut members = Vec::new();
    for dir in DIRECTIONS {
        for pod in &locals {
            let policies = world.selecting(pod, dir);
            if !policies.is_empty() {
                members.push((GroupKey::new(dir, &policies, pod), policies, *pod));
            }
        }
    }
    let groups = groups::group(members);
    let mut rs = Ruleset { sets: dispatch_maps(&groups), chains: base_chains() };
    let mut allowances = Allowances::new(world);
    for (key, group) in &groups {
        let (chain, sets) = group_chain(&mut allowances, key.dir, group);
        rs.sets.extend(sets);
        rs.chains.push(chain);
    }
    rs
}

/// `ingress_dispatch4`, ...: every address of a grouped pod → its group's chain. An address
/// held by two pods is a bug elsewhere; the first pod keeps it.
fn dispatch_maps(groups: &std::collections::BTreeMap<GroupKey, Group>) -> Vec<Set> {
    let mut out = Vec::new();
    for dir in DIRECTIONS {
        let mut seen: BTreeSet<IpAddr> = BTreeSet::new();
        let mut elements: [Vec<(IpAddr, String)>; 2] = Default::default();
        for (_, group) in groups.iter().filter(|(k, _)| k.dir == dir) {
            for pod in &group.pods {
                for ip in pod.ips.iter().filter(|ip| seen.insert(**ip)) {
                    let element =
                        format!("{ip} comment {} : jump {}", quote(&pod.key().to_string()), group.name);
                    elements[usize::from(ip.is_ipv6())].push((*ip, element));
                }
            }
        }
        for (family, mut elements) in FAMILIES.into_iter().zip(elements) {
            elements.sort();
            let typ = format!("{} : verdict", addr_type(family));
            out.push(Set::new(
                dispatch_map(dir, family),
                &typ,
                false,
                elements.into_iter().map(|(_, e)| e).collect(),
            ));
        }
    }
    out
}

/// A group's chain and its four sets: peers allowed everything, and (peer, protocol, port)
/// boxes, per family. The sets exist even when empty, so the shape of the ruleset depends on
/// the groups only.
fn group_chain(allowances: &mut Allowances, dir: Direction, group: &Group) -> (Chain, Vec<Set>) {
    let peer = match dir {
        Direction::Ingress => "saddr",
        Direction::Egress => "daddr",
    };
    let mut rules = Vec::new();
    let mut sets = Vec::new();
    let representative = group.pods[0];
    for (family, kw) in [(Family::V4, "ip"), (Family::V6, "ip6")] {
        let allowance = allowances.of(representative, dir, &group.policies, family);
        let addr = addr_type(family);
        let any = format!("{}_any{}", group.name, suffix(family));
        let any_elements = allowance.any.iter().map(|(lo, hi)| render(family, *lo, *hi)).collect();
        sets.push(Set::new(any.clone(), addr, true, any_elements));
        let ports = format!("{}_ports{}", group.name, suffix(family));
        let port_elements = allowance
            .boxes
            .disjoint_except(&allowance.any)
            .into_iter()
            .map(|(proto, (lo, hi), (first, last))| {
                let range = if first == last { first.to_string() } else { format!("{first}-{last}") };
                format!("{} . {} . {range}", render(family, lo, hi), proto.as_nft())
            })
            .collect();
        sets.push(Set::new(
            ports.clone(),
            &format!("{addr} . inet_proto . inet_service"),
            true,
            port_elements,
        ));
        rules.push(format!("{kw} {peer} @{any} accept"));
        rules.push(format!("{kw} {peer} . meta l4proto . th dport @{ports} accept"));
    }
    rules.push(format!("counter drop comment {}", quote(&format!("no NetworkPolicy {dir} rule allows it"))));
    let names: Vec<String> = group.policies.iter().map(|p| p.key().to_string()).collect();
    let comment = Some(format!("{dir} of pods selected by {}", names.join(", ")));
    (Chain { name: group.name.clone(), hook: None, comment, rules }, sets)
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

/// `ingress_dispatch4`, ...
fn dispatch_map(dir: Direction, family: Family) -> String {
    format!("{}_dispatch{}", dir.field(), suffix(family))
}

/// The hooked chains: egress of local pods on forward and input, ingress on forward.
fn base_chains() -> Vec<Chain> {
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
    vec![
        base("forward_egress", "forward", "filter", Direction::Egress),
        base("forward_ingress", "forward", "filter + 1", Direction::Ingress),
        base("input_egress", "input", "filter", Direction::Egress),
    ]
}
