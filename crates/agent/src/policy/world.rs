//! The cluster as NetworkPolicy sees it, built from the datastore's records: pods (labels,
//! addresses, node, named ports), namespaces (labels), policies (validated like the API
//! server does), AdminNetworkPolicies and the BaselineAdminNetworkPolicy, and nodes (their addresses, for `explain`). Pure: the controller and
//! `twill policy explain` read the records and hand them here.

use policy::{
    AdminPolicy, NamedPort, Namespace, NetworkPolicy, Node, ParseError, Pod, Protocol, Tier, World,
    parse_admin_spec, parse_policy_spec,
};

use crate::record::{AdminPolicyRecord, NamespaceRecord, NodeRecord, PodRecord, PolicyRecord};

/// Everything policy decisions depend on, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterRecords {
    pub pods: Vec<PodRecord>,
    pub namespaces: Vec<NamespaceRecord>,
    pub policies: Vec<PolicyRecord>,
    pub admin_policies: Vec<AdminPolicyRecord>,
    pub baseline_policies: Vec<AdminPolicyRecord>,
    pub nodes: Vec<NodeRecord>,
}

/// A record that could not become part of the world.
#[derive(Debug, thiserror::Error)]
pub enum RecordProblem {
    #[error("policy record {namespace}/{name}: {source}")]
    Policy { namespace: String, name: String, source: Box<ParseError> },
    #[error("{} record {name}: {source}", tier.kind())]
    AdminPolicy { tier: Tier, name: String, source: Box<ParseError> },
    #[error(
        "pod record {namespace}/{name}: port {port}: unknown protocol {protocol:?} (expected TCP, UDP or SCTP)"
    )]
    PortProtocol { namespace: String, name: String, port: String, protocol: String },
}

/// The world of `records`, and the records left out of it.
pub fn build_world(records: &ClusterRecords) -> (World, Vec<RecordProblem>) {
    let mut world = World::new();
    let mut problems = Vec::new();
    for ns in &records.namespaces {
        world.add_namespace(Namespace::new(&ns.name, ns.labels.clone()));
    }
    for pod in &records.pods {
        world.add_pod(build_pod(pod, &mut problems));
    }
    for p in &records.policies {
        match build_policy(p) {
            Ok(policy) => world.add_policy(policy),
            Err(problem) => problems.push(problem),
        }
    }
    let tiers = [(Tier::Admin, &records.admin_policies), (Tier::Baseline, &records.baseline_policies)];
    for (tier, list) in tiers {
        for p in list {
            match build_admin_policy(tier, p) {
                Ok(policy) => world.add_admin_policy(policy),
                Err(problem) => problems.push(problem),
            }
        }
    }
    for n in &records.nodes {
        let ips = std::iter::once(n.node_ip).chain(n.node_ip6).collect();
        world.add_node(Node { name: n.name.clone(), ips, labels: n.labels.clone() });
    }
    (world, problems)
}

fn build_policy(p: &PolicyRecord) -> Result<NetworkPolicy, RecordProblem> {
    parse_policy_spec(&p.namespace, &p.name, &p.spec).map_err(|source| RecordProblem::Policy {
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        source: Box::new(source),
    })
}

fn build_admin_policy(tier: Tier, p: &AdminPolicyRecord) -> Result<AdminPolicy, RecordProblem> {
    parse_admin_spec(tier, &p.name, &p.spec).map_err(|source| RecordProblem::AdminPolicy {
        tier,
        name: p.name.clone(),
        source: Box::new(source),
    })
}

/// A pod; a named port with a protocol policy does not know is left out (and reported): it
/// can then match no named policy port, which is what an unknown protocol deserves.
fn build_pod(r: &PodRecord, problems: &mut Vec<RecordProblem>) -> Pod {
    let mut ports = Vec::new();
    for p in &r.ports {
        match Protocol::parse(&p.protocol) {
            Some(protocol) => ports.push(NamedPort { name: p.name.clone(), port: p.port, protocol }),
            None => problems.push(RecordProblem::PortProtocol {
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                port: p.name.clone(),
                protocol: p.protocol.clone(),
            }),
        }
    }
    Pod {
        namespace: r.namespace.clone(),
        name: r.name.clone(),
        labels: r.labels.clone(),
        ips: r.ips.clone(),
        ports,
        node: r.node.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BackendKind, NamedPort as PortRecord};
    use policy::{Endpoint, NsName, evaluate};
    use serde_json::json;

    fn pod(ns: &str, name: &str, ip: &str, labels: &[(&str, &str)]) -> PodRecord {
        PodRecord {
            namespace: ns.into(),
            name: name.into(),
            node: "node-1".into(),
            ips: vec![ip.parse().unwrap()],
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ports: vec![PortRecord { name: "serve-80-tcp".into(), port: 80, protocol: "TCP".into() }],
            ..Default::default()
        }
    }

    fn records() -> ClusterRecords {
        ClusterRecords {
            pods: vec![pod("x", "a", "10.244.1.2", &[("pod", "a")]), pod("y", "b", "10.244.2.2", &[])],
            namespaces: vec![NamespaceRecord {
                name: "y".into(),
                labels: [("team".into(), "blue".into())].into(),
            }],
            policies: vec![PolicyRecord {
                namespace: "x".into(),
                name: "from-blue".into(),
                spec: json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}], "ports": [{"port": "serve-80-tcp"}]}]}),
            }],
            admin_policies: Vec::new(),
            baseline_policies: Vec::new(),
            nodes: vec![NodeRecord {
                name: "node-1".into(),
                node_ip: "10.100.0.11".parse().unwrap(),
                node_ip6: None,
                subnet: "10.244.1.0/24".parse().unwrap(),
                subnet6: None,
                vtep_mac: None,
                backend: BackendKind::HostGw,
                expires: 0,
                heartbeat: 0,
                health: String::new(),
                bgp: None,
                http: None,
                labels: [("role".into(), "infra".into())].into(),
            }],
        }
    }

    fn allowed(w: &World, from: &str, to: &str, port: u16) -> bool {
        let end = |s: &str| w.endpoint(s).unwrap();
        evaluate(w, &end(from), &end(to), port, Protocol::Tcp).allowed()
    }

    #[test]
    fn records_become_a_world_that_decides() {
        let (w, problems) = build_world(&records());
        assert!(problems.is_empty(), "{problems:?}");
        assert!(allowed(&w, "y/b", "x/a", 80), "namespace label and named port");
        assert!(!allowed(&w, "y/b", "x/a", 81));
        assert!(allowed(&w, "x/a", "y/b", 81), "y is not isolated");
        assert_eq!(w.pods_on("node-1").len(), 2);
        let from_node = evaluate(
            &w,
            &Endpoint::Ip("10.100.0.11".parse().unwrap()),
            &Endpoint::Pod(NsName::new("x", "a")),
            81,
            Protocol::Tcp,
        );
        assert!(from_node.allowed(), "a node reaches its own pods: {from_node}");
    }

    #[test]
    fn admin_records_join_the_world() {
        let mut r = records();
        r.admin_policies.push(AdminPolicyRecord {
            name: "deny-blue".into(),
            spec: json!({"priority": 1, "subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {"matchLabels": {"team": "blue"}}}]}]}),
        });
        r.baseline_policies.push(AdminPolicyRecord {
            name: "default".into(),
            spec: json!({"subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]}),
        });
        let (w, problems) = build_world(&r);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(!allowed(&w, "y/b", "x/a", 80), "the admin Deny beats the NetworkPolicy");
        assert!(!allowed(&w, "x/a", "y/b", 80), "the baseline denies into y/b");
        r.admin_policies[0].spec["priority"] = json!(1001);
        let (w, problems) = build_world(&r);
        assert_eq!(w.admin_policies(Tier::Admin).count(), 0);
        let text = problems[0].to_string();
        assert!(
            text.starts_with("AdminNetworkPolicy record deny-blue: ") && text.contains("spec.priority"),
            "{text}"
        );
    }

    #[test]
    fn bad_records_are_reported_not_used() {
        let mut r = records();
        r.policies[0].spec = json!({"podSelecter": {}});
        r.pods[0].ports[0].protocol = "tcp".into();
        let (w, problems) = build_world(&r);
        assert_eq!(w.policies().count(), 0);
        assert_eq!(w.pod(&NsName::new("x", "a")).unwrap().ports.len(), 0);
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(
            text[0].starts_with("pod record x/a: port serve-80-tcp: unknown protocol \"tcp\""),
            "{}",
            text[0]
        );
        assert!(
            text[1].starts_with("policy record x/from-blue: ") && text[1].contains("podSelecter"),
            "{}",
            text[1]
        );
    }
}
