//! The nftables compiler: the policies that touch one node's pods, as ONE `inet` table.
//!
//! Layout (see docs/policy.md):
//! - base chains on the `forward` hook (pod-to-pod across nodes and, with br_netfilter,
//!   through the bridge) and an `input` chain for what pods send to the node itself; each
//!   starts with `ct state established,related accept` (replies of allowed connections),
//!   lets IPv6 neighbour discovery through and drops `ct state invalid`;
//! - verdict maps keyed by the address of a local pod that some policy isolates
//!   (`ip daddr vmap @ingress_dispatch4`), jumping to that pod's chain; pods no policy
//!   selects are not in the maps, so they stay open;
//! - a pod chain jumps to the chain of each policy selecting it and then drops; a policy
//!   chain accepts what its rules allow, each rule being one or two set lookups (peer
//!   addresses as intervals, `l4proto . dport` intervals, `addr . l4proto . dport` for named
//!   ports), so neither per-packet cost nor the rule count grows with the number of peers.
//!
//! Egress and ingress are two base chains on the same hook: `accept` ends only its own
//! base chain, so a packet must pass both, and `drop` in either is final.

mod intervals;
mod names;
mod rules;
mod ruleset;
mod update;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

pub use ruleset::{Chain, FAMILY, Ruleset, Set, TABLE};
pub use update::{apply_batch, delete_batch, update_batch};

use crate::model::{Direction, Pod, PodRef, PolicyRef};
use crate::world::World;

/// Compiles the ruleset for a node whose pods are `node_pods` (pods not in the world are
/// ignored).
pub fn compile(world: &World, node_pods: &[PodRef]) -> Ruleset {
    let mut locals: Vec<&Pod> = node_pods.iter().filter_map(|r| world.pod(r)).collect();
    locals.sort_by_key(|p| p.key());
    locals.dedup_by_key(|p| p.key());
    let mut dispatch: BTreeMap<(Direction, bool), BTreeMap<IpAddr, String>> = BTreeMap::new();
    let mut used: BTreeSet<(PolicyRef, Direction)> = BTreeSet::new();
    let mut pod_chains = Vec::new();
    for dir in [Direction::Ingress, Direction::Egress] {
        for pod in &locals {
            let selecting = world.selecting(pod, dir);
            if selecting.is_empty() {
                continue;
            }
            let chain = names::pod_chain(&pod.key(), dir);
            for ip in &pod.ips {
                // An address held by two pods is a bug elsewhere; the first pod keeps it.
                dispatch.entry((dir, ip.is_ipv6())).or_default().entry(*ip).or_insert_with(|| chain.clone());
            }
            let mut rules: Vec<String> =
                selecting.iter().map(|p| format!("jump {}", names::policy_chain(&p.key(), dir))).collect();
            rules.push("counter drop".into());
            used.extend(selecting.iter().map(|p| (p.key(), dir)));
            pod_chains.push(Chain { name: chain, hook: None, comment: Some(pod.key().to_string()), rules });
        }
    }
    let mut rs = Ruleset { sets: Vec::new(), chains: base_chains() };
    for (key, dir) in &used {
        let Some(policy) = world.policy(key) else { continue };
        let (chain, sets) = rules::policy_chain(world, policy, *dir, &locals);
        rs.sets.extend(sets);
        rs.chains.push(chain);
    }
    for dir in [Direction::Ingress, Direction::Egress] {
        for v6 in [false, true] {
            let elements = dispatch.remove(&(dir, v6)).unwrap_or_default();
            let elements = elements.into_iter().map(|(ip, chain)| format!("{ip} : jump {chain}")).collect();
            let typ = if v6 { "ipv6_addr : verdict" } else { "ipv4_addr : verdict" };
            rs.sets.push(Set::new(names::dispatch_map(dir, v6), typ, false, elements));
        }
    }
    rs.chains.extend(pod_chains);
    rs
}

/// The hooked chains: egress of local pods on forward and input, ingress on forward.
fn base_chains() -> Vec<Chain> {
    let chain = |name: &str, hook: &str, priority: &str, dir: Direction, field: &str| {
        let mut rules = vec![
            "ct state established,related accept".to_string(),
            // Neighbour discovery is how pods find each other at all; conntrack does not
            // track it, so it must pass before the invalid-state drop.
            "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept"
                .to_string(),
            "ct state invalid drop".to_string(),
        ];
        rules.push(format!("ip {field} vmap @{}", names::dispatch_map(dir, false)));
        rules.push(format!("ip6 {field} vmap @{}", names::dispatch_map(dir, true)));
        let hook = Some(format!("type filter hook {hook} priority {priority}; policy accept;"));
        Chain { name: name.into(), hook, comment: None, rules }
    };
    vec![
        chain("forward_egress", "forward", "filter", Direction::Egress, "saddr"),
        chain("forward_ingress", "forward", "filter + 1", Direction::Ingress, "daddr"),
        chain("input_egress", "input", "filter", Direction::Egress, "saddr"),
    ]
}
