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
//! AdminNetworkPolicy and the baseline add ordered chains before and after the dispatch maps
//! ([`tiers`]); a node without admin policies for its pods has none.
//!
//! Egress and ingress are two base chains on the same hook: `accept` ends only its own base
//! chain, so a packet must pass both, and `drop` in either is final.

mod allow;
mod boxes;
pub mod flowlog;
mod groups;
mod intervals;
mod ruleset;
mod tiers;
mod update;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

pub use flowlog::{FlowLogs, FlowSite, FlowSites, FlowVerdict};
use fw::nft::{
    Chain, ChainType, DataType, Elem, ElemData, Field, Hook, Match, Rule, Set, Stmt, Value, Verdict,
};
pub use ruleset::{FAMILY, Ruleset, TABLE, table_id};
pub use tiers::{TierPlan, TierRulePlan, plan_tiers, tier_chain};
pub use update::{apply_batch, delete_batch, update_batch};

use crate::admin::Tier;
use crate::model::{Direction, Family, Pod, PodRef};
use crate::world::World;
use allow::Allowances;
use groups::{Group, GroupKey};
use ruleset::{addr_part, addr_type, comment, port_part, proto_part};

const FAMILIES: [Family; 2] = [Family::V4, Family::V6];
const DIRECTIONS: [Direction; 2] = [Direction::Ingress, Direction::Egress];

/// Compiles the ruleset for a node whose pods are `node_pods` (pods not in the world are
/// ignored).
pub fn compile(world: &World, node_pods: &[PodRef]) -> Ruleset {
    compile_logged(world, node_pods, FlowLogs::Off).0
}

/// [`compile`], with the flow log statements `logs` asks for and their catalogue.
pub fn compile_logged(world: &World, node_pods: &[PodRef], logs: FlowLogs) -> (Ruleset, FlowSites) {
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
    let mut sites = FlowSites::new(logs);
    let (tier_chains, tier_sets) = tiers::render_tiers(&plan_tiers(world, &locals), &mut sites);
    let present: BTreeSet<String> = tier_chains.iter().map(|c| c.name.clone()).collect();
    let mut rs = Ruleset::new(FAMILY, TABLE);
    rs.sets = dispatch_maps(&groups);
    rs.sets.extend(tier_sets);
    rs.sets.extend(flowlog::local_sets(logs, &locals));
    rs.chains = base_chains(&present, flowlog::open_rules(&mut sites));
    rs.chains.extend(tier_chains);
    let mut allowances = Allowances::new(world);
    for (key, group) in &groups {
        let (chain, sets) = group_chain(&mut allowances, key.dir, group, &mut sites);
        rs.sets.extend(sets);
        rs.chains.push(chain);
    }
    (rs, sites)
}

/// `ingress_dispatch4`, ...: every address of a grouped pod → its group's chain. An address
/// held by two pods is a bug elsewhere; the first pod keeps it.
fn dispatch_maps(groups: &BTreeMap<GroupKey, Group>) -> Vec<Set> {
    let mut out = Vec::new();
    for dir in DIRECTIONS {
        let mut seen: BTreeSet<IpAddr> = BTreeSet::new();
        let mut elements: [Vec<(IpAddr, Elem)>; 2] = Default::default();
        for (_, group) in groups.iter().filter(|(k, _)| k.dir == dir) {
            for pod in &group.pods {
                for ip in pod.ips.iter().filter(|ip| seen.insert(**ip)) {
                    let element = Elem::new(vec![fw::nft::KeyPart::addr(*ip)])
                        .with_comment(comment(&pod.key().to_string()))
                        .mapped_to(ElemData::Verdict(Verdict::Jump(group.name.clone())));
                    elements[usize::from(ip.is_ipv6())].push((*ip, element));
                }
            }
        }
        for (family, mut elements) in FAMILIES.into_iter().zip(elements) {
            elements.sort_by_key(|(ip, _)| *ip);
            let map = Set::map(dispatch_map(dir, family), &[addr_type(family)], &[DataType::Verdict]);
            out.push(map.with_elems(elements.into_iter().map(|(_, e)| e).collect()));
        }
    }
    out
}

/// A group's chain and its four sets: peers allowed everything, and (peer, protocol, port)
/// boxes, per family. The sets exist even when empty, so the shape of the ruleset depends on
/// the groups only.
fn group_chain(
    allowances: &mut Allowances,
    dir: Direction,
    group: &Group,
    sites: &mut FlowSites,
) -> (Chain, Vec<Set>) {
    let policies = group.policies.iter().map(|p| p.key()).collect();
    let [log_allow, log_deny] = sites.group_stmts(&group.name, dir, policies);
    let accept =
        |m: Match| Rule::new(vec![m], [log_allow.clone(), vec![Stmt::Verdict(Verdict::Accept)]].concat());
    let mut rules = Vec::new();
    let mut sets = Vec::new();
    let representative = group.pods[0];
    for family in FAMILIES {
        let allowance = allowances.of(representative, dir, &group.policies, family);
        let addr = addr_type(family);
        let peer = peer_field(dir, family);
        let any = format!("{}_any{}", group.name, suffix(family));
        let any_elements =
            allowance.any.iter().map(|(lo, hi)| Elem::new(vec![addr_part(family, *lo, *hi)])).collect();
        sets.push(Set::new(any.clone(), &[addr]).intervals().with_elems(any_elements));
        let ports = format!("{}_ports{}", group.name, suffix(family));
        let port_elements = allowance
            .boxes
            .disjoint_except(&allowance.any)
            .into_iter()
            .map(|(proto, (lo, hi), (first, last))| {
                Elem::new(vec![addr_part(family, lo, hi), proto_part(proto), port_part(first, last)])
            })
            .collect();
        let port_types = [addr, DataType::InetProto, DataType::InetService];
        sets.push(Set::new(ports.clone(), &port_types).intervals().with_elems(port_elements));
        rules.push(accept(Match::in_set(&[peer], any)));
        let boxed = [peer, Field::L4Proto, Field::ThDport];
        rules.push(accept(Match::in_set(&boxed, ports)));
    }
    let no_rule = comment(&format!("no NetworkPolicy {dir} rule allows it"));
    let drop = [vec![Stmt::Counter], log_deny, vec![Stmt::Verdict(Verdict::Drop)]].concat();
    rules.push(Rule::new(vec![], drop).with_comment(no_rule));
    let names: Vec<String> = group.policies.iter().map(|p| p.key().to_string()).collect();
    let mut chain = Chain::new(group.name.clone(), rules);
    chain.comment = Some(comment(&format!("{dir} of pods selected by {}", names.join(", "))));
    (chain, sets)
}

/// The address a direction's verdict depends on: where ingress comes from, where egress goes.
fn peer_field(dir: Direction, family: Family) -> Field {
    match (dir, family) {
        (Direction::Ingress, Family::V4) => Field::IpSaddr,
        (Direction::Ingress, Family::V6) => Field::Ip6Saddr,
        (Direction::Egress, Family::V4) => Field::IpDaddr,
        (Direction::Egress, Family::V6) => Field::Ip6Daddr,
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

/// The hooked chains: egress of local pods on forward and input, ingress on forward. Each
/// jumps to the admin tier's chain of its direction before the dispatch maps and to the
/// baseline's after them, when `tiers` (chain names) has them; `open` rules (flow logs of
/// pods no policy decided for) last.
fn base_chains(tiers: &BTreeSet<String>, open: BTreeMap<Direction, Vec<Rule>>) -> Vec<Chain> {
    let base = |name: &str, hook: Hook, priority: i32, dir: Direction| {
        let local = |family| match dir {
            Direction::Ingress => peer_field(Direction::Egress, family),
            Direction::Egress => peer_field(Direction::Ingress, family),
        };
        let nd = (133..=136).map(|t| fw::nft::KeyPart::Exact(Value::Icmpv6Type(t))).collect();
        let jump = |tier| {
            let chain = tier_chain(tier, dir);
            tiers.contains(&chain).then(|| Rule::verdict(vec![], Verdict::Jump(chain)))
        };
        let mut rules = vec![
            Rule::verdict(vec![Match::AnyOf { field: Field::CtState, bits: 2 | 4 }], Verdict::Accept),
            // Neighbour discovery is how pods find each other at all, and conntrack does not
            // track it: it must pass before the invalid-state drop.
            Rule::verdict(
                vec![Match::OneOf { field: Field::Icmpv6Type, negate: false, values: nd }],
                Verdict::Accept,
            ),
            Rule::verdict(vec![Match::AnyOf { field: Field::CtState, bits: 1 }], Verdict::Drop),
        ];
        rules.extend(jump(Tier::Admin));
        rules.extend([
            Rule::new(
                vec![],
                vec![Stmt::Vmap { key: vec![local(Family::V4)], map: dispatch_map(dir, Family::V4) }],
            ),
            Rule::new(
                vec![],
                vec![Stmt::Vmap { key: vec![local(Family::V6)], map: dispatch_map(dir, Family::V6) }],
            ),
        ]);
        rules.extend(jump(Tier::Baseline));
        rules.extend(open.get(&dir).cloned().unwrap_or_default());
        Chain::hooked(name, ChainType::Filter, hook, priority, rules)
    };
    vec![
        base("forward_egress", Hook::Forward, 0, Direction::Egress),
        base("forward_ingress", Hook::Forward, 1, Direction::Ingress),
        base("input_egress", Hook::Input, 0, Direction::Egress),
    ]
}
