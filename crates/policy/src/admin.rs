//! The admin tiers of `policy.networking.k8s.io/v1alpha1`: AdminNetworkPolicy (checked before
//! any NetworkPolicy, by priority) and BaselineAdminNetworkPolicy (checked when no
//! NetworkPolicy selects the pod), validated, plus what their subjects, peers and ports match.
//! Both are cluster-scoped; their rules are ordered and the first match decides.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::{Direction, Pod, Protocol};
use crate::selector::LabelSelector;
use crate::world::World;

/// The only name a BaselineAdminNetworkPolicy may have (the API allows one per cluster).
pub const BASELINE_NAME: &str = "default";
/// Highest (least important) AdminNetworkPolicy priority.
pub const MAX_PRIORITY: u32 = 1000;
/// Rules per direction, peers per rule and ports per rule: at most this many.
pub const MAX_ITEMS: usize = 100;
/// CIDRs per `networks` peer.
pub const MAX_NETWORKS: usize = 25;

/// Which admin tier a policy belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// AdminNetworkPolicy: before NetworkPolicy.
    Admin,
    /// BaselineAdminNetworkPolicy: after NetworkPolicy, for pods no NetworkPolicy selects.
    Baseline,
}

impl Tier {
    pub fn kind(self) -> &'static str {
        match self {
            Tier::Admin => "AdminNetworkPolicy",
            Tier::Baseline => "BaselineAdminNetworkPolicy",
        }
    }

    /// `anp`, `banp`: short names for chains, comments and the command line.
    pub fn short(self) -> &'static str {
        match self {
            Tier::Admin => "anp",
            Tier::Baseline => "banp",
        }
    }
}

/// What a matching rule does. Baseline rules are Allow or Deny only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Allow,
    Deny,
    /// Skip the remaining AdminNetworkPolicy rules: NetworkPolicy (then the baseline) decides.
    Pass,
}

impl Action {
    pub fn as_k8s(self) -> &'static str {
        match self {
            Action::Allow => "Allow",
            Action::Deny => "Deny",
            Action::Pass => "Pass",
        }
    }
}

/// An AdminNetworkPolicy or the BaselineAdminNetworkPolicy, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminPolicy {
    pub tier: Tier,
    pub name: String,
    /// 0–1000, lower first; always 0 for the baseline (it has no priority).
    pub priority: u32,
    pub subject: Subject,
    pub ingress: Vec<AdminRule>,
    pub egress: Vec<AdminRule>,
}

impl AdminPolicy {
    pub fn rules(&self, dir: Direction) -> &[AdminRule] {
        match dir {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }

    /// The reference of rule `index` of `dir`.
    pub fn rule_ref(&self, dir: Direction, index: usize) -> TierRuleRef {
        let rule = &self.rules(dir)[index];
        TierRuleRef {
            tier: self.tier,
            policy: self.name.clone(),
            priority: self.priority,
            direction: dir,
            index,
            name: rule.name.clone(),
            action: rule.action,
        }
    }
}

/// The pods a policy applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// Every pod of the matching namespaces.
    Namespaces(LabelSelector),
    /// Matching pods in matching namespaces.
    Pods { namespaces: LabelSelector, pods: LabelSelector },
}

/// One rule: traffic matching a peer AND a port gets `action`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminRule {
    /// Optional (`""`), at most 100 characters: named in explain and flow logs.
    pub name: String,
    pub action: Action,
    /// At least one.
    pub peers: Vec<AdminPeer>,
    /// Empty: every protocol and port (ICMP too).
    pub ports: Vec<AdminPort>,
}

/// A `from`/`to` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminPeer {
    /// Every pod of the matching namespaces.
    Namespaces(LabelSelector),
    /// Matching pods in matching namespaces.
    Pods { namespaces: LabelSelector, pods: LabelSelector },
    /// Egress only: the addresses of the nodes whose labels match.
    Nodes(LabelSelector),
    /// Egress only: addresses in any of these CIDRs, pod addresses included.
    Networks(Vec<IpNet>),
}

/// A `ports` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminPort {
    Number(Protocol, u16),
    /// `start` through `end`, inclusive.
    Range(Protocol, u16, u16),
    /// A container port name of the destination pod, whatever its protocol.
    Named(String),
}

/// One rule of one admin policy, as explain and flow logs name it:
/// `AdminNetworkPolicy deny-y (priority 10) ingress[0] "deny-from-y" Deny`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TierRuleRef {
    pub tier: Tier,
    pub policy: String,
    pub priority: u32,
    pub direction: Direction,
    pub index: usize,
    pub name: String,
    pub action: Action,
}

impl TierRuleRef {
    /// `anp/deny-y ingress[0]`: short enough for an nft comment.
    pub fn short(&self) -> String {
        format!("{}/{} {}[{}]", self.tier.short(), self.policy, self.direction, self.index)
    }
}

impl fmt::Display for TierRuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.tier.kind(), self.policy)?;
        if self.tier == Tier::Admin {
            write!(f, " (priority {})", self.priority)?;
        }
        write!(f, " {}[{}]", self.direction, self.index)?;
        if !self.name.is_empty() {
            write!(f, " {:?}", self.name)?;
        }
        write!(f, " {}", self.action.as_k8s())
    }
}

impl World {
    /// True when `subject` selects `pod`.
    pub fn subject_selects(&self, subject: &Subject, pod: &Pod) -> bool {
        match subject {
            Subject::Namespaces(ns) => self.in_namespaces(ns, None, pod),
            Subject::Pods { namespaces, pods } => self.in_namespaces(namespaces, Some(pods), pod),
        }
    }

    /// True when `pod` lives in a namespace `namespaces` selects and `pods` (if any) selects it.
    fn in_namespaces(&self, namespaces: &LabelSelector, pods: Option<&LabelSelector>, pod: &Pod) -> bool {
        namespaces.matches(&self.namespace_labels(&pod.namespace))
            && pods.is_none_or(|s| s.matches(&pod.labels))
    }

    /// True when an admin `peer` matches the other end: `pod` when it is a pod of the world,
    /// `ip` its address in the connection's family.
    pub fn admin_peer_matches(&self, peer: &AdminPeer, pod: Option<&Pod>, ip: Option<IpAddr>) -> bool {
        match peer {
            AdminPeer::Namespaces(ns) => pod.is_some_and(|p| self.in_namespaces(ns, None, p)),
            AdminPeer::Pods { namespaces, pods } => {
                pod.is_some_and(|p| self.in_namespaces(namespaces, Some(pods), p))
            }
            AdminPeer::Nodes(sel) => ip.is_some_and(|ip| self.node_ips(sel).any(|n| n == ip)),
            AdminPeer::Networks(nets) => ip.is_some_and(|ip| nets.iter().any(|n| n.contains(&ip))),
        }
    }

    /// The addresses of the nodes `selector` selects by their labels.
    pub fn node_ips<'a>(&'a self, selector: &'a LabelSelector) -> impl Iterator<Item = IpAddr> + 'a {
        self.nodes().filter(|n| selector.matches(&n.labels)).flat_map(|n| n.ips.iter().copied())
    }

    /// The pods of the world an admin peer selects (none for `networks` and `nodes`).
    pub fn admin_peer_pods<'a>(&'a self, peer: &'a AdminPeer) -> Box<dyn Iterator<Item = &'a Pod> + 'a> {
        match peer {
            AdminPeer::Networks(_) | AdminPeer::Nodes(_) => Box::new(std::iter::empty()),
            _ => Box::new(self.pods().filter(move |p| self.admin_peer_matches(peer, Some(p), None))),
        }
    }

    /// The admin policies of `tier` whose subject selects `pod`, in evaluation order.
    pub fn admin_selecting<'a>(&'a self, tier: Tier, pod: &'a Pod) -> Vec<&'a AdminPolicy> {
        self.admin_policies(tier).filter(|p| self.subject_selects(&p.subject, pod)).collect()
    }
}

/// True when a port entry matches `protocol`/`port`; named ports resolve against
/// `destination` (an address outside the world has none).
pub fn admin_port_matches(pp: &AdminPort, protocol: Protocol, port: u16, destination: Option<&Pod>) -> bool {
    match pp {
        AdminPort::Number(proto, n) => *proto == protocol && *n == port,
        AdminPort::Range(proto, first, last) => *proto == protocol && (*first..=*last).contains(&port),
        AdminPort::Named(name) => destination.and_then(|d| d.named_port(name, protocol)) == Some(port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_refs_read_well() {
        let r = TierRuleRef {
            tier: Tier::Admin,
            policy: "deny-y".into(),
            priority: 10,
            direction: Direction::Ingress,
            index: 0,
            name: "deny-from-y".into(),
            action: Action::Deny,
        };
        assert_eq!(r.to_string(), "AdminNetworkPolicy deny-y (priority 10) ingress[0] \"deny-from-y\" Deny");
        assert_eq!(r.short(), "anp/deny-y ingress[0]");
        let b = TierRuleRef { tier: Tier::Baseline, policy: "default".into(), name: String::new(), ..r };
        assert_eq!(b.to_string(), "BaselineAdminNetworkPolicy default ingress[0] Deny");
    }

    #[test]
    fn named_ports_follow_the_destination() {
        let pod = Pod {
            ports: vec![crate::model::NamedPort { name: "dns".into(), port: 53, protocol: Protocol::Udp }],
            ..Pod::default()
        };
        let named = AdminPort::Named("dns".into());
        assert!(admin_port_matches(&named, Protocol::Udp, 53, Some(&pod)));
        assert!(!admin_port_matches(&named, Protocol::Tcp, 53, Some(&pod)));
        assert!(!admin_port_matches(&named, Protocol::Udp, 53, None));
        assert!(admin_port_matches(&AdminPort::Range(Protocol::Tcp, 80, 90), Protocol::Tcp, 85, None));
        assert!(!admin_port_matches(&AdminPort::Number(Protocol::Udp, 80), Protocol::Tcp, 80, None));
    }
}
