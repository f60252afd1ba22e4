//! The objects policy is about: `networking.k8s.io/v1` NetworkPolicy (validated, with defaults
//! applied), namespaces, pods and nodes.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::selector::{LabelSelector, Labels};

/// The label the API server puts on every namespace, with the namespace's name as value.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A namespaced object's `NAMESPACE/NAME`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NsName {
    pub namespace: String,
    pub name: String,
}

/// A pod, by namespace and name.
pub type PodRef = NsName;
/// A NetworkPolicy, by namespace and name.
pub type PolicyRef = NsName;

impl NsName {
    pub fn new(namespace: &str, name: &str) -> NsName {
        NsName { namespace: namespace.into(), name: name.into() }
    }
}

impl fmt::Display for NsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl FromStr for NsName {
    type Err = String;

    /// `NAMESPACE/NAME`, both non-empty.
    fn from_str(s: &str) -> Result<NsName, String> {
        match s.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(NsName::new(ns, name))
            }
            _ => Err(format!("{s:?} is not NAMESPACE/NAME")),
        }
    }
}

/// A transport protocol a policy port can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];

    /// The Kubernetes spelling (`TCP`), case-sensitive like the API server.
    pub fn parse(s: &str) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.as_k8s() == s)
    }

    pub fn as_k8s(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }

    /// The nft `inet_proto` name.
    pub fn as_nft(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl FromStr for Protocol {
    type Err = String;

    /// Any case (`tcp`, `TCP`): for command lines. Manifests use [`Protocol::parse`].
    fn from_str(s: &str) -> Result<Protocol, String> {
        Protocol::parse(&s.to_ascii_uppercase())
            .ok_or_else(|| format!("unknown protocol {s:?}: expected TCP, UDP or SCTP"))
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_k8s())
    }
}

/// An IP family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: IpAddr) -> Family {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// A traffic direction relative to the pod a policy selects; also a `policyTypes` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub fn as_k8s(self) -> &'static str {
        match self {
            Direction::Ingress => "Ingress",
            Direction::Egress => "Egress",
        }
    }

    /// The field holding the rules (`ingress`, `egress`).
    pub fn field(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field())
    }
}

/// A NetworkPolicy after validation and defaulting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkPolicy {
    pub namespace: String,
    pub name: String,
    /// The pods of `namespace` the policy applies to; empty selects all of them.
    pub pod_selector: LabelSelector,
    /// Effective policy types: as written, or inferred (Ingress always, Egress when the policy
    /// has egress rules). Sorted, without duplicates.
    pub policy_types: Vec<Direction>,
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
}

impl NetworkPolicy {
    pub fn key(&self) -> PolicyRef {
        NsName::new(&self.namespace, &self.name)
    }

    /// True when the policy isolates its pods in `dir` (its policy types include `dir`).
    pub fn applies_to(&self, dir: Direction) -> bool {
        self.policy_types.contains(&dir)
    }

    /// The rules of `dir`; rules of a direction the policy does not apply to are ignored by
    /// Kubernetes, and so here.
    pub fn rules(&self, dir: Direction) -> &[Rule] {
        match (self.applies_to(dir), dir) {
            (false, _) => &[],
            (true, Direction::Ingress) => &self.ingress,
            (true, Direction::Egress) => &self.egress,
        }
    }
}

/// One ingress or egress rule: it allows traffic that matches a peer AND a port. An empty
/// `peers` matches every peer, an empty `ports` every port and protocol.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    pub peers: Vec<Peer>,
    pub ports: Vec<PolicyPort>,
}

/// A `from`/`to` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Pods matching `pods` in namespaces matching `namespaces`. A missing namespace selector
    /// means the policy's own namespace; a missing pod selector means every pod.
    Pods {
        namespaces: Option<LabelSelector>,
        pods: Option<LabelSelector>,
    },
    IpBlock(IpBlock),
}

/// `ipBlock`: addresses in `cidr` but in none of `except`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpBlock {
    pub cidr: IpNet,
    pub except: Vec<IpNet>,
}

impl IpBlock {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.cidr.contains(&ip) && !self.except.iter().any(|e| e.contains(&ip))
    }
}

/// A `ports` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyPort {
    pub protocol: Protocol,
    /// `None`: every port of the protocol.
    pub port: Option<PortSpec>,
}

/// `port` (and `endPort`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortSpec {
    Number(u16),
    /// `port` through `endPort`, inclusive.
    Range(u16, u16),
    /// A container port name, resolved against the destination pod.
    Named(String),
}

/// A namespace and its labels (always including [`NAMESPACE_NAME_LABEL`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    pub name: String,
    pub labels: Labels,
}

impl Namespace {
    /// Adds the automatic `kubernetes.io/metadata.name` label, overriding any other value as
    /// the API server does.
    pub fn new(name: &str, mut labels: Labels) -> Namespace {
        labels.insert(NAMESPACE_NAME_LABEL.into(), name.into());
        Namespace { name: name.into(), labels }
    }
}

/// A pod as policy sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub labels: Labels,
    /// Its addresses, at most one per family in practice.
    #[serde(default)]
    pub ips: Vec<IpAddr>,
    /// Named container ports, what named policy ports resolve against.
    #[serde(default)]
    pub ports: Vec<NamedPort>,
    /// The node it runs on.
    #[serde(default)]
    pub node: String,
}

impl Pod {
    pub fn key(&self) -> PodRef {
        NsName::new(&self.namespace, &self.name)
    }

    /// Its first address of `family`.
    pub fn ip(&self, family: Family) -> Option<IpAddr> {
        self.ips.iter().copied().find(|ip| Family::of(*ip) == family)
    }

    /// The port number its container port `name` has for `protocol`.
    pub fn named_port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        self.ports.iter().find(|p| p.name == name && p.protocol == protocol).map(|p| p.port)
    }
}

/// A named container port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedPort {
    pub name: String,
    pub port: u16,
    pub protocol: Protocol,
}

/// A node: traffic from its own addresses to its own pods is always allowed, as Kubernetes
/// requires for kubelet probes. Its labels are what AdminNetworkPolicy `nodes` peers select.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    #[serde(default)]
    pub ips: Vec<IpAddr>,
    #[serde(default)]
    pub labels: Labels,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns_name_round_trips() {
        let r: NsName = "x/a".parse().unwrap();
        assert_eq!(r, NsName::new("x", "a"));
        assert_eq!(r.to_string(), "x/a");
        assert!("x".parse::<NsName>().is_err());
        assert!("/a".parse::<NsName>().is_err());
        assert!("x/a/b".parse::<NsName>().is_err());
    }

    #[test]
    fn protocols_are_case_sensitive() {
        assert_eq!(Protocol::parse("SCTP"), Some(Protocol::Sctp));
        assert_eq!(Protocol::parse("tcp"), None);
        assert_eq!(Protocol::Udp.as_nft(), "udp");
        assert_eq!("sctp".parse::<Protocol>(), Ok(Protocol::Sctp));
        assert!("icmp".parse::<Protocol>().is_err());
    }

    #[test]
    fn namespace_label_is_forced() {
        let ns = Namespace::new("x", [(NAMESPACE_NAME_LABEL.to_string(), "other".to_string())].into());
        assert_eq!(ns.labels[NAMESPACE_NAME_LABEL], "x");
    }

    #[test]
    fn ip_block_except() {
        let b = IpBlock { cidr: "10.0.0.0/8".parse().unwrap(), except: vec!["10.1.0.0/16".parse().unwrap()] };
        assert!(b.contains("10.2.0.1".parse().unwrap()));
        assert!(!b.contains("10.1.0.1".parse().unwrap()));
        assert!(!b.contains("11.0.0.1".parse().unwrap()));
        assert!(!b.contains("::1".parse().unwrap()));
    }

    #[test]
    fn rules_of_a_direction_not_in_policy_types_are_ignored() {
        let p = NetworkPolicy {
            namespace: "x".into(),
            name: "p".into(),
            pod_selector: LabelSelector::everything(),
            policy_types: vec![Direction::Egress],
            ingress: vec![Rule::default()],
            egress: vec![],
        };
        assert!(p.rules(Direction::Ingress).is_empty());
        assert!(p.applies_to(Direction::Egress));
    }
}
