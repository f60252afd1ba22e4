//! Everything policy decisions depend on: namespaces, pods, policies and nodes.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use crate::admin::{AdminPolicy, Tier};
use crate::decode::Object;
use crate::model::{Namespace, NetworkPolicy, Node, NsName, Pod, PodRef, PolicyRef};
use crate::selector::Labels;

/// The cluster as policy sees it. Objects are keyed by name; adding one with the key of an
/// existing one replaces it (an update).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct World {
    namespaces: BTreeMap<String, Namespace>,
    pods: BTreeMap<PodRef, Pod>,
    policies: BTreeMap<PolicyRef, NetworkPolicy>,
    nodes: BTreeMap<String, Node>,
    /// AdminNetworkPolicies by name.
    admins: BTreeMap<String, AdminPolicy>,
    /// The BaselineAdminNetworkPolicy (there is at most one, named `default`).
    baseline: Option<AdminPolicy>,
    /// How many pods each namespace has: namespaces exist for policy as soon as a pod does.
    pod_namespaces: BTreeMap<String, usize>,
}

/// One end of a connection: a pod of the world, or any other address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Pod(PodRef),
    Ip(IpAddr),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Pod(r) => r.fmt(f),
            Endpoint::Ip(ip) => ip.fmt(f),
        }
    }
}

impl World {
    pub fn new() -> World {
        World::default()
    }

    /// Adds or replaces a namespace; its `kubernetes.io/metadata.name` label is (re)set.
    pub fn add_namespace(&mut self, ns: Namespace) {
        let ns = Namespace::new(&ns.name, ns.labels);
        self.namespaces.insert(ns.name.clone(), ns);
    }

    pub fn add_pod(&mut self, pod: Pod) {
        let ns = pod.namespace.clone();
        if self.pods.insert(pod.key(), pod).is_none() {
            *self.pod_namespaces.entry(ns).or_default() += 1;
        }
    }

    pub fn add_policy(&mut self, policy: NetworkPolicy) {
        self.policies.insert(policy.key(), policy);
    }

    /// Adds or replaces an AdminNetworkPolicy or the BaselineAdminNetworkPolicy.
    pub fn add_admin_policy(&mut self, policy: AdminPolicy) {
        match policy.tier {
            Tier::Admin => {
                self.admins.insert(policy.name.clone(), policy);
            }
            Tier::Baseline => self.baseline = Some(policy),
        }
    }

    pub fn remove_admin_policy(&mut self, tier: Tier, name: &str) -> Option<AdminPolicy> {
        match tier {
            Tier::Admin => self.admins.remove(name),
            Tier::Baseline => self.baseline.take_if(|b| b.name == name),
        }
    }

    /// The policies of `tier` in evaluation order: AdminNetworkPolicies by priority, then
    /// (for equal priorities, where the API leaves the order open) by name.
    pub fn admin_policies(&self, tier: Tier) -> impl Iterator<Item = &AdminPolicy> {
        let mut list: Vec<&AdminPolicy> = match tier {
            Tier::Admin => self.admins.values().collect(),
            Tier::Baseline => self.baseline.iter().collect(),
        };
        list.sort_by_key(|p| p.priority);
        list.into_iter()
    }

    pub fn add_node(&mut self, node: Node) {
        self.nodes.insert(node.name.clone(), node);
    }

    /// Adds a parsed manifest object. A Pod manifest only describes labels and ports: pods
    /// join the world once attached, with their addresses and node ([`World::add_pod`]).
    pub fn add_object(&mut self, object: Object) {
        match object {
            Object::NetworkPolicy(p) => self.add_policy(p),
            Object::Namespace(ns) => self.add_namespace(ns),
            Object::AdminPolicy(p) => self.add_admin_policy(p),
            Object::Pod(_) => {}
        }
    }

    pub fn remove_namespace(&mut self, name: &str) -> Option<Namespace> {
        self.namespaces.remove(name)
    }

    pub fn remove_pod(&mut self, pod: &PodRef) -> Option<Pod> {
        let removed = self.pods.remove(pod)?;
        if let Some(n) = self.pod_namespaces.get_mut(&pod.namespace) {
            *n -= 1;
            if *n == 0 {
                self.pod_namespaces.remove(&pod.namespace);
            }
        }
        Some(removed)
    }

    pub fn remove_policy(&mut self, policy: &PolicyRef) -> Option<NetworkPolicy> {
        self.policies.remove(policy)
    }

    pub fn remove_node(&mut self, name: &str) -> Option<Node> {
        self.nodes.remove(name)
    }

    pub fn pod(&self, pod: &PodRef) -> Option<&Pod> {
        self.pods.get(pod)
    }

    pub fn policy(&self, policy: &PolicyRef) -> Option<&NetworkPolicy> {
        self.policies.get(policy)
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.get(name)
    }

    pub fn pods(&self) -> impl Iterator<Item = &Pod> {
        self.pods.values()
    }

    pub fn policies(&self) -> impl Iterator<Item = &NetworkPolicy> {
        self.policies.values()
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    pub fn namespaces(&self) -> impl Iterator<Item = &Namespace> {
        self.namespaces.values()
    }

    /// The pods running on node `node`: what [`crate::compile`] needs for that node.
    pub fn pods_on(&self, node: &str) -> Vec<PodRef> {
        self.pods.values().filter(|p| p.node == node).map(Pod::key).collect()
    }

    /// The pods of namespace `ns`.
    pub fn pods_in<'a>(&'a self, ns: &'a str) -> impl Iterator<Item = &'a Pod> + 'a {
        in_namespace(&self.pods, ns)
    }

    /// The policies of namespace `ns`.
    pub fn policies_in<'a>(&'a self, ns: &'a str) -> impl Iterator<Item = &'a NetworkPolicy> + 'a {
        in_namespace(&self.policies, ns)
    }

    /// The labels of namespace `ns`; a namespace the world does not know still has its
    /// automatic name label, so `namespaceSelector` by name works before it is seen.
    pub fn namespace_labels(&self, ns: &str) -> Cow<'_, Labels> {
        match self.namespaces.get(ns) {
            Some(n) => Cow::Borrowed(&n.labels),
            None => Cow::Owned(Namespace::new(ns, Labels::new()).labels),
        }
    }

    /// Namespaces that exist for policy: those added, and those that pods live in.
    pub fn namespace_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.namespaces.keys().map(String::as_str).collect();
        names.extend(self.pod_namespaces.keys().map(String::as_str));
        names.sort();
        names.dedup();
        names
    }

    /// `NAMESPACE/POD` of a pod of the world, or an IP address.
    pub fn endpoint(&self, s: &str) -> Result<Endpoint, String> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Endpoint::Ip(ip));
        }
        let pod: PodRef = s.parse().map_err(|e| format!("{e}: expected NAMESPACE/POD or an IP address"))?;
        match self.pods.contains_key(&pod) {
            true => Ok(Endpoint::Pod(pod)),
            false => Err(format!("no pod {pod}")),
        }
    }
}

fn in_namespace<'a, T>(map: &'a BTreeMap<NsName, T>, ns: &'a str) -> impl Iterator<Item = &'a T> + 'a {
    map.range(NsName::new(ns, "")..).take_while(move |(k, _)| k.namespace == ns).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NAMESPACE_NAME_LABEL;

    fn pod(ns: &str, name: &str) -> Pod {
        Pod { namespace: ns.into(), name: name.into(), ..Pod::default() }
    }

    #[test]
    fn namespace_scans_stop_at_the_namespace() {
        let mut w = World::new();
        for (ns, name) in [("x", "a"), ("x", "b"), ("xx", "a"), ("y", "a"), ("w", "z")] {
            w.add_pod(pod(ns, name));
        }
        let names: Vec<_> = w.pods_in("x").map(|p| p.key().to_string()).collect();
        assert_eq!(names, ["x/a", "x/b"]);
        assert_eq!(w.pods_in("v").count(), 0);
        assert_eq!(w.namespace_names(), ["w", "x", "xx", "y"]);
        w.add_pod(pod("w", "z"));
        w.remove_pod(&NsName::new("w", "z"));
        assert_eq!(w.namespace_names(), ["x", "xx", "y"], "w has no pods left");
        w.add_pod(Pod { node: "n1".into(), ..pod("x", "c") });
        assert_eq!(w.pods_on("n1"), [NsName::new("x", "c")]);
    }

    #[test]
    fn unknown_namespaces_still_have_their_name_label() {
        let w = World::new();
        assert_eq!(w.namespace_labels("q")[NAMESPACE_NAME_LABEL], "q");
    }

    #[test]
    fn endpoints() {
        let mut w = World::new();
        w.add_pod(pod("x", "a"));
        assert_eq!(w.endpoint("x/a"), Ok(Endpoint::Pod(NsName::new("x", "a"))));
        assert_eq!(w.endpoint("10.0.0.1"), Ok(Endpoint::Ip("10.0.0.1".parse().unwrap())));
        assert_eq!(w.endpoint("x/b"), Err("no pod x/b".into()));
        assert!(w.endpoint("nonsense").is_err());
    }
}
