//! Which pods a policy applies to, and which pods and addresses its peers and ports match:
//! the one place these Kubernetes rules are written, shared by [`crate::evaluate`] and
//! [`crate::compile`].

use std::net::IpAddr;

use crate::model::{Direction, NetworkPolicy, Peer, Pod, PolicyPort, PortSpec, Protocol};
use crate::selector::LabelSelector;
use crate::world::World;

impl World {
    /// The policies that select `pod` (its namespace, its labels) and isolate it in `dir`.
    pub fn selecting<'a>(&'a self, pod: &'a Pod, dir: Direction) -> Vec<&'a NetworkPolicy> {
        self.policies_in(&pod.namespace)
            .filter(|p| p.applies_to(dir) && p.pod_selector.matches(&pod.labels))
            .collect()
    }

    /// True when the pod-selecting peer (`namespaceSelector` and/or `podSelector`) of a policy
    /// in `policy_ns` selects `pod`. No namespace selector: the policy's namespace only.
    pub fn peer_selects(
        &self,
        policy_ns: &str,
        namespaces: Option<&LabelSelector>,
        pods: Option<&LabelSelector>,
        pod: &Pod,
    ) -> bool {
        let ns_ok = match namespaces {
            None => pod.namespace == policy_ns,
            Some(sel) => sel.matches(&self.namespace_labels(&pod.namespace)),
        };
        ns_ok && pods.is_none_or(|sel| sel.matches(&pod.labels))
    }

    /// The pods a pod-selecting peer selects.
    pub fn peer_pods<'a>(
        &'a self,
        policy_ns: &'a str,
        namespaces: Option<&'a LabelSelector>,
        pods: Option<&'a LabelSelector>,
    ) -> Box<dyn Iterator<Item = &'a Pod> + 'a> {
        let selected = move |p: &&Pod| pods.is_none_or(|sel| sel.matches(&p.labels));
        match namespaces {
            None => Box::new(self.pods_in(policy_ns).filter(selected)),
            Some(ns_sel) => Box::new(
                self.namespace_names()
                    .into_iter()
                    .filter(move |ns| ns_sel.matches(&self.namespace_labels(ns)))
                    .flat_map(move |ns| self.pods_in(ns))
                    .filter(selected),
            ),
        }
    }

    /// True when `peer` (of a policy in `policy_ns`) matches the other end of a connection:
    /// `pod` when it is a pod of the world, `ip` its address in the connection's family.
    /// ipBlocks match by address, pod addresses included.
    pub fn peer_matches(&self, policy_ns: &str, peer: &Peer, pod: Option<&Pod>, ip: Option<IpAddr>) -> bool {
        match peer {
            Peer::Pods { namespaces, pods } => {
                pod.is_some_and(|p| self.peer_selects(policy_ns, namespaces.as_ref(), pods.as_ref(), p))
            }
            Peer::IpBlock(block) => ip.is_some_and(|ip| block.contains(ip)),
        }
    }
}

/// True when a `ports` entry matches `protocol`/`port`; named ports resolve against
/// `destination`, the pod receiving the connection (none: an address outside the world, which
/// has no named ports).
pub fn port_matches(pp: &PolicyPort, protocol: Protocol, port: u16, destination: Option<&Pod>) -> bool {
    pp.protocol == protocol
        && match &pp.port {
            None => true,
            Some(PortSpec::Number(n)) => *n == port,
            Some(PortSpec::Range(first, last)) => (*first..=*last).contains(&port),
            Some(PortSpec::Named(name)) => {
                destination.and_then(|d| d.named_port(name, protocol)) == Some(port)
            }
        }
}
