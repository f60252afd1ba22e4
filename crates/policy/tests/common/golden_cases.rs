//! The golden-file cases: the e2e world plus policies, compiled for node n1. Shared by the
//! golden test (tests/golden.rs) and the kernel tier, which loads every file into nft.

use std::path::PathBuf;

use twill_policy::{FlowLogs, PodRef, World, compile_logged};

/// (name, policies). Every golden file is also checked by the kernel tier with `nft -c -f`.
pub const CASES: &[(&str, &str)] = &[
    ("no-policy", ""),
    (
        "flows-denied-ingress",
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{podSelector: {matchLabels: {pod: b}}}]
    ports: [{port: 80}]
",
    ),
    (
        "flows-all-egress",
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-dns, namespace: y}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - ports: [{port: 53, protocol: UDP}]
",
    ),
    (
        "deny-all-ingress",
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: x}
spec:
  podSelector: {}
",
    ),
    (
        "peers-and-or",
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: and, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector:
        matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}]
      podSelector: {matchLabels: {pod: b}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: or, namespace: y}
spec:
  podSelector: {matchLabels: {pod: b}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}
    - podSelector: {matchLabels: {pod: a}}
",
    ),
    (
        "ip-blocks",
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: cidr-except, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - ipBlock: {cidr: 10.244.1.0/24, except: [10.244.1.20/31]}
    - ipBlock: {cidr: 'fd00:1::/64', except: ['fd00:1::20/127']}
    - podSelector: {matchLabels: {pod: c}}
  egress:
  - to:
    - ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8, 192.168.0.0/16]}
    - ipBlock: {cidr: 10.244.0.0/16, except: [10.244.1.11/32]}
    ports: [{port: 443}, {protocol: UDP, port: 53}]
",
    ),
    (
        "named-ports",
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named-in, namespace: x}
spec:
  podSelector: {}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]
    ports: [{port: serve-80-tcp}, {protocol: UDP, port: serve-81-udp}, {port: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named-out, namespace: y}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {}, namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}}]
    ports: [{protocol: SCTP, port: serve-81-sctp}]
",
    ),
    (
        "ports-and-protocols",
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ranges, namespace: z}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - ports:
    - {port: 79, endPort: 81}
    - {port: 80}
    - {protocol: UDP, port: 1000, endPort: 2000}
    - {protocol: SCTP, port: 81}
    - {protocol: UDP}
",
    ),
    (
        "egress-deny-and-namespace",
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-egress-a, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: to-y, namespace: x}
spec:
  podSelector: {}
  egress:
  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]
",
    ),
    (
        "union-and-allow-all",
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only-80, namespace: y}
spec:
  podSelector: {}
  ingress:
  - ports: [{port: 80}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all, namespace: y}
spec:
  podSelector: {}
  ingress:
  - {}
",
    ),
    (
        "flows-all-admin-tiers",
        "apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: guard-x}
spec:
  priority: 10
  subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: x}}}
  ingress:
  - name: pass-y
    action: Pass
    from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: y}}}]
  - name: deny-z
    action: Deny
    from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: z}}}]
  - name: allow-rest
    action: Allow
    from: [{namespaces: {}}]
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  egress:
  - name: deny-z
    action: Deny
    to: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: z}}}]
",
    ),
    (
        "admin-tiers",
        "apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: guard-x}
spec:
  priority: 10
  subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: x}}}
  ingress:
  - name: pass-y
    action: Pass
    from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: y}}}]
  - name: deny-z-http
    action: Deny
    from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {pod: a}}}}]
    ports: [{namedPort: serve-80-tcp}, {portRange: {protocol: UDP, start: 80, end: 81}}]
  egress:
  - name: no-documentation-net
    action: Deny
    to: [{networks: [192.0.2.0/24, '2001:db8::/32']}]
  - name: no-kubelet-on-n2
    action: Deny
    to: [{nodes: {matchLabels: {node: n2}}}]
    ports: [{portNumber: {port: 10250}}]
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: allow-dns}
spec:
  priority: 5
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {pod: b}}}}
  egress:
  - action: Allow
    to: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: z}}}]
    ports: [{portNumber: {protocol: UDP, port: 53}}, {portNumber: {port: 53}}]
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  ingress:
  - name: deny-other-namespaces
    action: Deny
    from: [{namespaces: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [y]}]}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: y}
spec:
  podSelector: {matchLabels: {pod: a}}
",
    ),
];

pub fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The ruleset of node n1 for a case, with the case's policies as a comment header.
pub fn render(name: &str, yaml: &str) -> String {
    let world: World = super::world_with(yaml);
    let n1: Vec<PodRef> = world.pods().filter(|p| p.node == "n1").map(|p| p.key()).collect();
    let mut out = format!(
        "# Generated by crates/policy/tests/golden.rs (TWILL_BLESS=1 regenerates).\n\
         # Case {name}: node n1 (pods a and b of x, y, z) of the e2e world with:\n"
    );
    for line in yaml.lines() {
        out.push_str(&format!("#   {line}\n"));
    }
    out.push_str(&compile_logged(&world, &n1, mode(name)).0.text());
    out
}

/// The flow logs a case compiles with: `flows-MODE-...` cases log, the others do not.
pub fn mode(name: &str) -> FlowLogs {
    match name.split('-').take(2).collect::<Vec<_>>()[..] {
        ["flows", "all"] => FlowLogs::All,
        ["flows", "denied"] => FlowLogs::Denied,
        _ => FlowLogs::Off,
    }
}
