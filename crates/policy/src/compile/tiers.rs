//! The admin tiers in the table: one regular chain per tier and direction (`anp_ingress`,
//! `anp_egress`, `banp_ingress`, `banp_egress`), present only when a policy of that tier
//! selects a local pod and has rules of that direction. The base chains jump to the `anp_`
//! chain BEFORE the NetworkPolicy dispatch maps and to the `banp_` chain AFTER them:
//!
//! - an `anp_` rule accepts (Allow), drops (Deny) or returns (Pass: skip the rest of the tier,
//!   NetworkPolicy decides); no match returns too;
//! - a pod some NetworkPolicy selects is in a dispatch map whose group chain always ends in
//!   accept or drop, so only pods no NetworkPolicy selects reach the `banp_` chain — the
//!   baseline's place in the API.
//!
//! The chain lists the tier's rules in evaluation order (policies by priority then name,
//! rules as written), one nft rule per rule and family, each with its own interval set keyed
//! by `local pod . peer` (rules without ports) or `local pod . peer . l4proto . port`. Keying
//! by the local pod's address is what makes one set serve every subject pod: named ports of
//! ingress rules resolve per subject pod, egress ones per destination pod. Each compiled rule
//! carries its [`TierRuleRef`] ([`TierRulePlan`]) so that what the table does can be named.

use std::collections::BTreeMap;

use fw::nft::{Chain, DataType, Elem, Field, Match, Rule, Set, Stmt, Verdict};

use super::boxes::{AddrRange, Boxes, PortRange};
use super::groups::fnv1a;
use super::intervals::{AddrRanges, num};
use super::ruleset::{addr_part, addr_type, comment, port_part, proto_part};
use super::{FAMILIES, peer_field, suffix};
use crate::admin::{Action, AdminPeer, AdminPolicy, AdminPort, AdminRule, Tier, TierRuleRef};
use crate::model::{Direction, Family, Pod, Protocol};
use crate::world::World;

/// One admin rule compiled for one node and family: its identity and the elements of its set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierRulePlan {
    pub rule: TierRuleRef,
    pub family: Family,
    /// The rule has no ports: `local . peer` elements in `any`; else `local . peer . proto .
    /// port` boxes in `boxes`.
    pub all_ports: bool,
    pub any: Vec<(u128, AddrRange)>,
    pub boxes: Vec<(u128, Protocol, AddrRange, PortRange)>,
}

impl TierRulePlan {
    /// The chain this rule lives in: `anp_ingress`, `banp_egress`, ...
    pub fn chain(&self) -> String {
        tier_chain(self.rule.tier, self.rule.direction)
    }

    /// Its set's name: tier, direction, policy (bounded, plus a hash of the whole name so
    /// that two long names never share a set), rule index, kind and family.
    pub fn set(&self) -> String {
        let r = &self.rule;
        let short = &r.policy[..r.policy.len().min(64)];
        let kind = if self.all_ports { "any" } else { "ports" };
        format!(
            "{}_{}_{short}_{:08x}_{}_{kind}{}",
            r.tier.short(),
            r.direction.field(),
            fnv1a(&r.policy) as u32,
            r.index,
            suffix(self.family)
        )
    }

    /// What the rule does in nft: Pass returns to the base chain (NetworkPolicy is next).
    pub fn verdict(&self) -> Verdict {
        match self.rule.action {
            Action::Allow => Verdict::Accept,
            Action::Deny => Verdict::Drop,
            Action::Pass => Verdict::Return,
        }
    }
}

/// `anp_ingress`, ...
pub fn tier_chain(tier: Tier, dir: Direction) -> String {
    format!("{}_{}", tier.short(), dir.field())
}

/// Every admin rule touching a local pod, in evaluation order per tier and direction.
pub fn plan_tiers(world: &World, locals: &[&Pod]) -> Vec<TierRulePlan> {
    let mut out = Vec::new();
    for tier in [Tier::Admin, Tier::Baseline] {
        for dir in [Direction::Ingress, Direction::Egress] {
            for policy in world.admin_policies(tier) {
                // The baseline is only reached by pods no NetworkPolicy selects in `dir`.
                let reaches = |p: &Pod| tier == Tier::Admin || world.selecting(p, dir).is_empty();
                let subjects: Vec<&Pod> = locals
                    .iter()
                    .copied()
                    .filter(|p| reaches(p) && world.subject_selects(&policy.subject, p))
                    .collect();
                if subjects.is_empty() {
                    continue;
                }
                for (index, rule) in policy.rules(dir).iter().enumerate() {
                    for family in FAMILIES {
                        out.push(plan_rule(world, policy, dir, index, rule, &subjects, family));
                    }
                }
            }
        }
    }
    out
}

fn plan_rule(
    world: &World,
    policy: &AdminPolicy,
    dir: Direction,
    index: usize,
    rule: &AdminRule,
    subjects: &[&Pod],
    family: Family,
) -> TierRulePlan {
    let peers = peer_ranges(world, rule, family);
    let mut plan = TierRulePlan {
        rule: policy.rule_ref(dir, index),
        family,
        all_ports: rule.ports.is_empty(),
        any: Vec::new(),
        boxes: Vec::new(),
    };
    // Egress named ports resolve on the destination: one box per peer pod having the name.
    let named_destinations = named_destinations(world, rule, family);
    let mut locals: BTreeMap<u128, &Pod> = BTreeMap::new();
    for pod in subjects {
        for ip in pod.ips.iter().filter(|ip| Family::of(**ip) == family) {
            locals.entry(num(*ip)).or_insert(pod);
        }
    }
    for (local, pod) in locals {
        if plan.all_ports {
            plan.any.extend(peers.iter().map(|p| (local, *p)));
            continue;
        }
        let mut boxes = Boxes::default();
        for port in &rule.ports {
            match port {
                AdminPort::Number(proto, n) => peers.iter().for_each(|p| boxes.add(*proto, *p, (*n, *n))),
                AdminPort::Range(proto, a, b) => peers.iter().for_each(|p| boxes.add(*proto, *p, (*a, *b))),
                AdminPort::Named(name) if dir == Direction::Ingress => {
                    for proto in Protocol::ALL {
                        if let Some(n) = pod.named_port(name, proto) {
                            peers.iter().for_each(|p| boxes.add(proto, *p, (n, n)));
                        }
                    }
                }
                AdminPort::Named(name) => {
                    for (dest, ip) in &named_destinations {
                        for proto in Protocol::ALL {
                            if let Some(n) = dest.named_port(name, proto) {
                                boxes.add(proto, (*ip, *ip), (n, n));
                            }
                        }
                    }
                }
            }
        }
        plan.boxes.extend(boxes.disjoint().into_iter().map(|(proto, a, p)| (local, proto, a, p)));
    }
    plan
}

/// The addresses of `family` a rule's peers match: the pods they select and their networks.
fn peer_ranges(world: &World, rule: &AdminRule, family: Family) -> Vec<AddrRange> {
    let mut ranges = AddrRanges::default();
    for peer in &rule.peers {
        match peer {
            AdminPeer::Networks(nets) => {
                for net in nets.iter().filter(|n| Family::of(n.addr()) == family) {
                    ranges.add_block(&crate::model::IpBlock { cidr: *net, except: Vec::new() });
                }
            }
            AdminPeer::Nodes(sel) => {
                world.node_ips(sel).filter(|ip| Family::of(*ip) == family).for_each(|ip| ranges.add_ip(ip))
            }
            _ => {}
        }
        for pod in world.admin_peer_pods(peer) {
            pod.ips.iter().filter(|ip| Family::of(**ip) == family).for_each(|ip| ranges.add_ip(*ip));
        }
    }
    ranges.merged()
}

/// Every pod a rule's pod peers select, with its address of `family`.
fn named_destinations<'w>(world: &'w World, rule: &'w AdminRule, family: Family) -> Vec<(&'w Pod, u128)> {
    let mut out: Vec<(&Pod, u128)> = Vec::new();
    for peer in &rule.peers {
        for pod in world.admin_peer_pods(peer) {
            for ip in pod.ips.iter().filter(|ip| Family::of(**ip) == family) {
                if !out.iter().any(|(_, seen)| *seen == num(*ip)) {
                    out.push((pod, num(*ip)));
                }
            }
        }
    }
    out
}

/// The tier chains and their sets, from the plans.
pub fn render_tiers(plans: &[TierRulePlan]) -> (Vec<Chain>, Vec<Set>) {
    let mut chains: BTreeMap<String, Vec<Rule>> = BTreeMap::new();
    let mut sets = Vec::new();
    for plan in plans {
        let (set, rule) = render_rule(plan);
        sets.push(set);
        chains.entry(plan.chain()).or_default().push(rule);
    }
    let chains = chains
        .into_iter()
        .map(|(name, rules)| {
            let mut chain = Chain::new(name.clone(), rules);
            chain.comment = Some(comment(&format!("{name}: first matching rule decides")));
            chain
        })
        .collect();
    (chains, sets)
}

fn render_rule(plan: &TierRulePlan) -> (Set, Rule) {
    let family = plan.family;
    let dir = plan.rule.direction;
    let local = match dir {
        Direction::Ingress => peer_field(Direction::Egress, family),
        Direction::Egress => peer_field(Direction::Ingress, family),
    };
    let addr = addr_type(family);
    let local_part = |n: u128| addr_part(family, n, n);
    let (set, fields) = if plan.all_ports {
        let elems =
            plan.any.iter().map(|(l, (lo, hi))| Elem::new(vec![local_part(*l), addr_part(family, *lo, *hi)]));
        let set = Set::new(plan.set(), &[addr, addr]).intervals().with_elems(elems.collect());
        (set, vec![local, peer_field(dir, family)])
    } else {
        let elems = plan.boxes.iter().map(|(l, proto, (lo, hi), (first, last))| {
            Elem::new(vec![
                local_part(*l),
                addr_part(family, *lo, *hi),
                proto_part(*proto),
                port_part(*first, *last),
            ])
        });
        let types = [addr, addr, DataType::InetProto, DataType::InetService];
        let set = Set::new(plan.set(), &types).intervals().with_elems(elems.collect());
        (set, vec![local, peer_field(dir, family), Field::L4Proto, Field::ThDport])
    };
    let rule = Rule::new(
        vec![Match::in_set(&fields, plan.set())],
        vec![Stmt::Counter, Stmt::Verdict(plan.verdict())],
    )
    .with_comment(comment(&plan.rule.short()));
    (set, rule)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{AdminPeer, Subject};
    use crate::selector::LabelSelector;
    use crate::{Namespace, compile, update_batch};

    fn pod(ns: &str, name: &str, ip: &str, node: &str) -> Pod {
        Pod {
            namespace: ns.into(),
            name: name.into(),
            ips: vec![ip.parse().unwrap()],
            node: node.into(),
            ..Pod::default()
        }
    }

    fn world() -> World {
        let mut w = World::new();
        w.add_namespace(Namespace::new("x", Default::default()));
        w.add_pod(pod("x", "a", "10.0.1.1", "n1"));
        w.add_pod(pod("y", "a", "10.0.2.1", "n2"));
        let by_name = |ns: &str| LabelSelector::labels([(crate::NAMESPACE_NAME_LABEL, ns)]);
        w.add_admin_policy(AdminPolicy {
            tier: Tier::Admin,
            name: "deny-y".into(),
            priority: 1,
            subject: Subject::Namespaces(by_name("x")),
            ingress: vec![AdminRule {
                name: String::new(),
                action: Action::Deny,
                peers: vec![AdminPeer::Namespaces(by_name("y"))],
                ports: vec![],
            }],
            egress: vec![],
        });
        w
    }

    #[test]
    fn plans_name_their_rules_and_peers_change_elements_only() {
        let w = world();
        let local = w.pods_on("n1");
        let locals: Vec<&Pod> = local.iter().filter_map(|r| w.pod(r)).collect();
        let plans = plan_tiers(&w, &locals);
        assert_eq!(plans.len(), 2, "one per family");
        assert_eq!(plans[0].rule.short(), "anp/deny-y ingress[0]");
        assert_eq!(
            plans[0].any,
            vec![(
                num("10.0.1.1".parse().unwrap()),
                (num("10.0.2.1".parse().unwrap()), num("10.0.2.1".parse().unwrap()))
            )]
        );
        assert!(plans[1].any.is_empty(), "no IPv6 addresses");
        assert!(plan_tiers(&w, &[]).is_empty(), "no local subject, no rules");
        // A new peer pod is one more element; the table's shape stays.
        let old = compile(&w, &local);
        let mut w2 = w.clone();
        w2.add_pod(pod("y", "b", "10.0.2.2", "n2"));
        let new = compile(&w2, &local);
        assert_ne!(old, new);
        assert!(update_batch(&old, &new).is_some(), "elements only");
    }
}
