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
//! rules as written), per family: `ip daddr @SUBJECTS ip saddr @PEERS verdict` (no ports) or
//! `ip daddr @SUBJECTS ip saddr . meta l4proto . th dport @BOXES verdict`. Subjects (a
//! policy's local pods) and peers are separate sets, so elements add up (subjects + peers ×
//! ports) instead of multiplying. Only ingress named ports depend on the subject pod: they get
//! a third set keyed `subject . peer . l4proto . port`. Each compiled rule carries its
//! [`TierRuleRef`] ([`TierRulePlan`]) so that what the table does can be named.

use std::collections::BTreeMap;

use fw::nft::{Chain, DataType, Elem, Field, Match, Rule, Set, Stmt, Verdict};

use super::boxes::{AddrRange, Boxes, PortRange};
use super::flowlog::{FlowSite, FlowSites, FlowVerdict};
use super::groups::fnv1a;
use super::intervals::{AddrRanges, num};
use super::ruleset::{addr_part, addr_type, comment, port_part, proto_part};
use super::{FAMILIES, peer_field, suffix};
use crate::admin::{Action, AdminPeer, AdminPolicy, AdminPort, AdminRule, Tier, TierRuleRef};
use crate::model::{Direction, Family, Pod, Protocol};
use crate::world::World;

/// The tiers compiled for one node: the subject sets and the rules, in chain order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TierPlan {
    /// Per policy, direction and family: the set name and the local subjects' addresses.
    pub subjects: Vec<(String, Family, Vec<u128>)>,
    pub rules: Vec<TierRulePlan>,
}

/// One admin rule compiled for one node and family: its identity and its sets' elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierRulePlan {
    pub rule: TierRuleRef,
    pub family: Family,
    /// The subject set of the rule's policy (and direction, family).
    pub subjects: String,
    /// The rule has no ports: its peers are `any`; else `boxes` (peer × protocol × ports).
    pub all_ports: bool,
    pub any: Vec<AddrRange>,
    pub boxes: Vec<(Protocol, AddrRange, PortRange)>,
    /// Ingress rules with named ports: `subject . peer . protocol . port`, the port as the
    /// subject pod names it.
    pub named: Option<Vec<(u128, Protocol, AddrRange, PortRange)>>,
}

impl TierRulePlan {
    /// The chain this rule lives in: `anp_ingress`, `banp_egress`, ...
    pub fn chain(&self) -> String {
        tier_chain(self.rule.tier, self.rule.direction)
    }

    /// The name of one of its sets (`any`, `ports`, `named`).
    pub fn set(&self, kind: &str) -> String {
        let r = &self.rule;
        format!("{}_{}_{kind}{}", policy_prefix(r.tier, r.direction, &r.policy), r.index, suffix(self.family))
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

/// `anp_ingress_guard-x_1a2b3c4d`: tier, direction, the policy's name (bounded, plus a hash
/// of the whole name so that two long names never share a set).
fn policy_prefix(tier: Tier, dir: Direction, policy: &str) -> String {
    let short = &policy[..policy.len().min(64)];
    format!("{}_{}_{short}_{:08x}", tier.short(), dir.field(), fnv1a(policy) as u32)
}

/// Every admin rule touching a local pod, in evaluation order per tier and direction.
pub fn plan_tiers(world: &World, locals: &[&Pod]) -> TierPlan {
    let mut out = TierPlan::default();
    for tier in [Tier::Admin, Tier::Baseline] {
        for dir in [Direction::Ingress, Direction::Egress] {
            for policy in world.admin_policies(tier).filter(|p| !p.rules(dir).is_empty()) {
                // The baseline is only reached by pods no NetworkPolicy selects in `dir`.
                let reaches = |p: &Pod| tier == Tier::Admin || world.selecting(p, dir).is_empty();
                let subjects: Vec<&Pod> = locals
                    .iter()
                    .copied()
                    .filter(|p| reaches(p) && world.subject_selects(&policy.subject, p))
                    .collect();
                if !subjects.is_empty() {
                    plan_policy(world, policy, dir, &subjects, &mut out);
                }
            }
        }
    }
    out
}

fn plan_policy(world: &World, policy: &AdminPolicy, dir: Direction, subjects: &[&Pod], out: &mut TierPlan) {
    for family in FAMILIES {
        let name = format!("{}_subjects{}", policy_prefix(policy.tier, dir, &policy.name), suffix(family));
        let mut addrs: Vec<u128> = subjects
            .iter()
            .flat_map(|p| p.ips.iter())
            .filter(|ip| Family::of(**ip) == family)
            .map(|ip| num(*ip))
            .collect();
        addrs.sort();
        addrs.dedup();
        out.subjects.push((name.clone(), family, addrs));
        for (index, rule) in policy.rules(dir).iter().enumerate() {
            out.rules.push(plan_rule(world, policy.rule_ref(dir, index), rule, subjects, &name, family));
        }
    }
}

fn plan_rule(
    world: &World,
    rule_ref: TierRuleRef,
    rule: &AdminRule,
    subjects: &[&Pod],
    subject_set: &str,
    family: Family,
) -> TierRulePlan {
    let dir = rule_ref.direction;
    let peers = peer_ranges(world, rule, family);
    let named_ports: Vec<&str> = rule
        .ports
        .iter()
        .filter_map(|p| match p {
            AdminPort::Named(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let mut boxes = Boxes::default();
    for port in &rule.ports {
        match port {
            AdminPort::Number(proto, n) => peers.iter().for_each(|p| boxes.add(*proto, *p, (*n, *n))),
            AdminPort::Range(proto, a, b) => peers.iter().for_each(|p| boxes.add(*proto, *p, (*a, *b))),
            AdminPort::Named(_) => {}
        }
    }
    if dir == Direction::Egress {
        // Egress named ports resolve on the destination: one box per peer pod having the name.
        for (dest, ip) in named_destinations(world, rule, family) {
            for (name, proto) in named_ports.iter().flat_map(|n| Protocol::ALL.map(|p| (*n, p))) {
                if let Some(n) = dest.named_port(name, proto) {
                    boxes.add(proto, (ip, ip), (n, n));
                }
            }
        }
    }
    let named = (dir == Direction::Ingress && !named_ports.is_empty())
        .then(|| subject_named_boxes(subjects, &named_ports, &peers, family));
    TierRulePlan {
        rule: rule_ref,
        family,
        subjects: subject_set.to_string(),
        all_ports: rule.ports.is_empty(),
        any: if rule.ports.is_empty() { peers } else { Vec::new() },
        boxes: boxes.disjoint(),
        named,
    }
}

/// Ingress named ports, resolved on each subject pod: `subject . peer . protocol . port`.
fn subject_named_boxes(
    subjects: &[&Pod],
    names: &[&str],
    peers: &[AddrRange],
    family: Family,
) -> Vec<(u128, Protocol, AddrRange, PortRange)> {
    let mut locals: BTreeMap<u128, &Pod> = BTreeMap::new();
    for pod in subjects {
        for ip in pod.ips.iter().filter(|ip| Family::of(**ip) == family) {
            locals.entry(num(*ip)).or_insert(pod);
        }
    }
    let mut out = Vec::new();
    for (local, pod) in locals {
        let mut boxes = Boxes::default();
        for (name, proto) in names.iter().flat_map(|n| Protocol::ALL.map(|p| (*n, p))) {
            if let Some(n) = pod.named_port(name, proto) {
                peers.iter().for_each(|p| boxes.add(proto, *p, (n, n)));
            }
        }
        out.extend(boxes.disjoint().into_iter().map(|(proto, a, p)| (local, proto, a, p)));
    }
    out
}

/// The addresses of `family` a rule's peers match: pods, nodes and networks.
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
    let mut out: BTreeMap<u128, &Pod> = BTreeMap::new();
    for peer in &rule.peers {
        for pod in world.admin_peer_pods(peer) {
            for ip in pod.ips.iter().filter(|ip| Family::of(**ip) == family) {
                out.entry(num(*ip)).or_insert(pod);
            }
        }
    }
    out.into_iter().map(|(ip, pod)| (pod, ip)).collect()
}

/// The tier chains and their sets, from the plan.
pub fn render_tiers(plan: &TierPlan, sites: &mut FlowSites) -> (Vec<Chain>, Vec<Set>) {
    let mut sets: Vec<Set> = plan
        .subjects
        .iter()
        .map(|(name, family, addrs)| {
            let elems = addrs.iter().map(|a| Elem::new(vec![addr_part(*family, *a, *a)])).collect();
            Set::new(name.clone(), &[addr_type(*family)]).with_elems(elems)
        })
        .collect();
    let mut chains: BTreeMap<String, Vec<Rule>> = BTreeMap::new();
    for rule in &plan.rules {
        let (rule_sets, nft_rules) = render_rule(rule, &flow_log(rule, sites));
        sets.extend(rule_sets);
        chains.entry(rule.chain()).or_default().extend(nft_rules);
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

/// The flow log statement of a rule that decides (Allow, Deny; Pass decides nothing), when
/// the mode logs its verdict: the site names the rule exactly.
fn flow_log(plan: &TierRulePlan, sites: &mut FlowSites) -> Vec<Stmt> {
    let r = &plan.rule;
    let verdict = match r.action {
        Action::Allow => FlowVerdict::Allowed,
        Action::Deny => FlowVerdict::Denied,
        Action::Pass => return Vec::new(),
    };
    let site = FlowSite {
        verdict,
        direction: r.direction,
        tier: r.tier.kind().to_string(),
        policies: vec![r.policy.clone()],
        rule: Some(r.index),
        reason: "rule",
    };
    sites.log_stmts(&format!("{:08x}", fnv1a(&r.short()) as u32), site)
}

/// A rule's sets and nft rules (two when ingress named ports sit beside numbered ones);
/// `log` goes before the verdict.
fn render_rule(plan: &TierRulePlan, log: &[Stmt]) -> (Vec<Set>, Vec<Rule>) {
    let (family, dir) = (plan.family, plan.rule.direction);
    let local = match dir {
        Direction::Ingress => peer_field(Direction::Egress, family),
        Direction::Egress => peer_field(Direction::Ingress, family),
    };
    let (addr, peer) = (addr_type(family), peer_field(dir, family));
    let subject = Match::in_set(&[local], plan.subjects.clone());
    let nft_rule = |matches: Vec<Match>| {
        Rule::new(matches, [&[Stmt::Counter], log, &[Stmt::Verdict(plan.verdict())]].concat())
            .with_comment(comment(&plan.rule.short()))
    };
    let port_types = [addr, DataType::InetProto, DataType::InetService];
    let box_elem = |(proto, (lo, hi), (first, last)): &(Protocol, AddrRange, PortRange)| {
        vec![addr_part(family, *lo, *hi), proto_part(*proto), port_part(*first, *last)]
    };
    if plan.all_ports {
        let elems = plan.any.iter().map(|(lo, hi)| Elem::new(vec![addr_part(family, *lo, *hi)])).collect();
        let set = Set::new(plan.set("any"), &[addr]).intervals().with_elems(elems);
        return (vec![set], vec![nft_rule(vec![subject, Match::in_set(&[peer], plan.set("any"))])]);
    }
    let elems = plan.boxes.iter().map(|b| Elem::new(box_elem(b))).collect();
    let mut sets = vec![Set::new(plan.set("ports"), &port_types).intervals().with_elems(elems)];
    let boxed = [peer, Field::L4Proto, Field::ThDport];
    let mut rules = vec![nft_rule(vec![subject, Match::in_set(&boxed, plan.set("ports"))])];
    if let Some(named) = &plan.named {
        let elems = named
            .iter()
            .map(|(l, proto, a, p)| {
                let mut key = vec![addr_part(family, *l, *l)];
                key.extend(box_elem(&(*proto, *a, *p)));
                Elem::new(key)
            })
            .collect();
        let types = [addr, addr, DataType::InetProto, DataType::InetService];
        sets.push(Set::new(plan.set("named"), &types).intervals().with_elems(elems));
        let keyed = [local, peer, Field::L4Proto, Field::ThDport];
        rules.push(nft_rule(vec![Match::in_set(&keyed, plan.set("named"))]));
    }
    (sets, rules)
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
        let plan = plan_tiers(&w, &locals);
        let plans = &plan.rules;
        assert_eq!(plans.len(), 2, "one per family");
        assert_eq!(plans[0].rule.short(), "anp/deny-y ingress[0]");
        let y_a = num("10.0.2.1".parse().unwrap());
        assert_eq!(plans[0].any, vec![(y_a, y_a)]);
        assert_eq!(plan.subjects[0].2, vec![num("10.0.1.1".parse().unwrap())]);
        assert!(plans[1].any.is_empty(), "no IPv6 addresses");
        assert_eq!(plan_tiers(&w, &[]), TierPlan::default(), "no local subject, no rules");
        // A new peer pod is one more element; the table's shape stays.
        let old = compile(&w, &local);
        let mut w2 = w.clone();
        w2.add_pod(pod("y", "b", "10.0.2.2", "n2"));
        let new = compile(&w2, &local);
        assert_ne!(old, new);
        assert!(update_batch(&old, &new).is_some(), "elements only");
    }
}
