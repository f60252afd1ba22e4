//! Local pods that must be filtered alike share one chain and its sets: pods selected by the
//! same policies in a direction (and, for ingress, whose named ports resolve alike) are
//! allowed exactly the same peers and ports. Sharing keeps the element count at
//! (groups × peers) instead of (pods × peers), and a pod that joins an existing group costs one
//! map element.
//!
//! A group's name derives from its key (policies, resolved named ports), never from its
//! peers, so peers coming and going change elements only.

use std::collections::BTreeMap;

use crate::model::{Direction, NetworkPolicy, Pod, PolicyRef, PortSpec, Protocol};

/// What makes pods filter alike.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    pub dir: Direction,
    pub policies: Vec<PolicyRef>,
    /// Ingress only: each named port the policies use, and what it is on these pods.
    pub named: Vec<(Protocol, String, Option<u16>)>,
}

/// A group: its chain name and its pods.
#[derive(Debug)]
pub struct Group<'w> {
    pub name: String,
    pub policies: Vec<&'w NetworkPolicy>,
    pub pods: Vec<&'w Pod>,
}

impl GroupKey {
    pub fn new(dir: Direction, policies: &[&NetworkPolicy], pod: &Pod) -> GroupKey {
        let mut named = Vec::new();
        if dir == Direction::Ingress {
            for rule in policies.iter().flat_map(|p| p.rules(dir)) {
                for pp in &rule.ports {
                    if let Some(PortSpec::Named(name)) = &pp.port {
                        named.push((pp.protocol, name.clone(), pod.named_port(name, pp.protocol)));
                    }
                }
            }
            named.sort();
            named.dedup();
        }
        GroupKey { dir, policies: policies.iter().map(|p| p.key()).collect(), named }
    }

    /// `ingress_x.allow-web_1a2b3c4d`: the first policy for the reader, a hash of the whole key
    /// for uniqueness.
    fn name(&self) -> String {
        let first = self.policies.first().map(|p| format!("{}.{}", p.namespace, p.name)).unwrap_or_default();
        // Kubernetes names are ASCII: any byte index is a char boundary.
        let first = &first[..first.len().min(100)];
        let mut whole = format!("{}|", self.dir.field());
        for p in &self.policies {
            whole.push_str(&format!("{p},"));
        }
        for (proto, name, port) in &self.named {
            whole.push_str(&format!("|{proto}/{name}={port:?}"));
        }
        format!("{}_{first}_{:08x}", self.dir.field(), fnv1a(&whole) as u32)
    }
}

/// Groups `(key, policies, pod)` triples; names are unique (a clash of hashes gets a suffix).
pub fn group<'w>(members: Vec<(GroupKey, Vec<&'w NetworkPolicy>, &'w Pod)>) -> BTreeMap<GroupKey, Group<'w>> {
    let mut groups: BTreeMap<GroupKey, Group<'w>> = BTreeMap::new();
    for (key, policies, pod) in members {
        groups
            .entry(key)
            .or_insert_with(|| Group { name: String::new(), policies, pods: Vec::new() })
            .pods
            .push(pod);
    }
    let mut used = std::collections::BTreeSet::new();
    for (key, group) in groups.iter_mut() {
        let base = key.name();
        let mut name = base.clone();
        let mut n = 1;
        while !used.insert(name.clone()) {
            n += 1;
            name = format!("{base}_{n}");
        }
        group.name = name;
    }
    groups
}

pub(super) fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NamedPort, PolicyPort, Rule};
    use crate::selector::LabelSelector;

    fn policy(name: &str, port: Option<PortSpec>) -> NetworkPolicy {
        NetworkPolicy {
            namespace: "x".into(),
            name: name.into(),
            pod_selector: LabelSelector::everything(),
            policy_types: vec![Direction::Ingress],
            ingress: vec![Rule { peers: vec![], ports: vec![PolicyPort { protocol: Protocol::Tcp, port }] }],
            egress: vec![],
        }
    }

    fn pod(name: &str, http: u16) -> Pod {
        let ports = vec![NamedPort { name: "http".into(), port: http, protocol: Protocol::Tcp }];
        Pod { namespace: "x".into(), name: name.into(), ports, ..Pod::default() }
    }

    #[test]
    fn same_policies_same_group_unless_named_ports_differ() {
        let p = policy("web", Some(PortSpec::Named("http".into())));
        let (a, b, c) = (pod("a", 80), pod("b", 80), pod("c", 8080));
        let members = [&a, &b, &c].map(|pd| (GroupKey::new(Direction::Ingress, &[&p], pd), vec![&p], pd));
        let groups = group(members.to_vec());
        let sizes: Vec<usize> = groups.values().map(|g| g.pods.len()).collect();
        assert_eq!(sizes, [2, 1]);
        let names: Vec<&str> = groups.values().map(|g| g.name.as_str()).collect();
        assert!(names.iter().all(|n| n.starts_with("ingress_x.web_")), "{names:?}");
        assert_ne!(names[0], names[1]);
        // Egress ignores named ports: they resolve against the destination.
        let k1 = GroupKey::new(Direction::Egress, &[&p], &a);
        assert_eq!(k1, GroupKey::new(Direction::Egress, &[&p], &c));
    }

    #[test]
    fn names_are_stable_and_bounded() {
        let p = policy(&"p".repeat(253), None);
        let key = GroupKey::new(Direction::Ingress, &[&p], &pod("a", 80));
        assert_eq!(key.name(), key.clone().name());
        assert!(key.name().len() < 130);
    }
}
