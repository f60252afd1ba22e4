//! The scenarios, after the Kubernetes e2e network-policy tests (test/e2e/network/netpol).
//! Tables are rows = client, columns = server, in the order x/a x/b x/c  y/a y/b y/c  z/a z/b
//! z/c; `.` connected, `X` not. Pods a, b, c run on nodes 1, 2, 3, so a column mixes
//! bridged (same node) and routed (other node) connections. A pod reaching itself is always
//! allowed (loopback).

use policy::Protocol::{self, Tcp, Udp};

use super::tables::*;
use testkit::policy_docs::np;

pub enum Step {
    Apply(String),
    /// `twill lab delete -f` of a manifest.
    DeleteManifest(String),
    DeletePolicy(&'static str),
    PodLabel(&'static str, &'static [&'static str]),
    NsLabel(&'static str, &'static [&'static str]),
    /// Measure a table; compare with `evaluate` and, when given, with a hand-written one.
    Check {
        port: u16,
        proto: Protocol,
        v6: bool,
        want: Option<&'static str>,
    },
    /// `twill policy explain FROM TO --port 80` prints what the model's verdict says and
    /// contains the text.
    Explain(&'static str, &'static str, &'static str),
}

pub struct Scenario {
    pub name: &'static str,
    pub steps: Vec<Step>,
}

fn check(port: u16, proto: Protocol, want: &'static str) -> Step {
    Step::Check { port, proto, v6: false, want: Some(want) }
}

fn check6(port: u16, proto: Protocol, want: &'static str) -> Step {
    Step::Check { port, proto, v6: true, want: Some(want) }
}

const XA: &str = "podSelector: {matchLabels: {pod: a}}";

/// The pod subnets of node 2 (pods b) and node 3 (pods c), which ipBlocks cut out.
pub struct Subnets {
    pub node2_v4: String,
    pub node3_v6: String,
}

pub fn all(nets: &Subnets) -> Vec<Scenario> {
    let mut out = selection();
    out.extend(ports());
    out.extend(egress());
    out.extend(changes());
    out.insert(5, ip_block(nets));
    out
}

fn scenario(name: &'static str, steps: Vec<Step>) -> Scenario {
    Scenario { name, steps }
}

/// Who may connect: default deny, namespaces, pod and namespace selectors, AND versus OR.
fn selection() -> Vec<Scenario> {
    vec![
        scenario(
            "default-deny ingress",
            vec![
                Step::Apply(np("x", "deny", "podSelector: {}")),
                check(80, Tcp, INTO_X_DENIED),
                check(81, Udp, INTO_X_DENIED),
                check6(80, Tcp, INTO_X_DENIED),
            ],
        ),
        scenario(
            "allow from the same namespace",
            vec![
                Step::Apply(np("x", "same-ns", "podSelector: {}\ningress:\n- from: [{podSelector: {}}]")),
                check(80, Tcp, INTO_X_FROM_X_ONLY),
            ],
        ),
        scenario(
            "namespaceSelector",
            vec![
                Step::Apply(np(
                    "x",
                    "from-y",
                    &format!("{XA}\ningress:\n- from: [{{namespaceSelector: {{matchLabels: {{ns: y}}}}}}]"),
                )),
                check(80, Tcp, INTO_XA_FROM_Y_ONLY),
                Step::Explain("y/c", "x/a", "allowed by x/from-y ingress[0]"),
                Step::Explain("z/b", "x/a", "denied: isolated by x/from-y; no ingress rule matches"),
                Step::Explain("x/a", "x/b", "not selected by any ingress policy"),
            ],
        ),
        scenario(
            "pod and namespace selector in one peer (AND)",
            vec![
                Step::Apply(np(
                    "x",
                    "and",
                    &format!(
                        "{XA}\ningress:\n- from:\n  - namespaceSelector: {{matchExpressions: [{{key: ns, operator: NotIn, values: [x]}}]}}\n    podSelector: {{matchLabels: {{pod: b}}}}"
                    ),
                )),
                check(80, Tcp, INTO_XA_FROM_B_OUTSIDE_X),
            ],
        ),
        scenario(
            "pod and namespace selector in two peers (OR)",
            vec![
                Step::Apply(np(
                    "x",
                    "or",
                    &format!(
                        "{XA}\ningress:\n- from:\n  - namespaceSelector: {{matchExpressions: [{{key: ns, operator: NotIn, values: [x]}}]}}\n  - podSelector: {{matchLabels: {{pod: b}}}}"
                    ),
                )),
                check(80, Tcp, INTO_XA_FROM_OTHER_NS_OR_B),
            ],
        ),
        scenario(
            "union of policies",
            vec![
                Step::Apply(np(
                    "x",
                    "from-y",
                    &format!("{XA}\ningress:\n- from: [{{namespaceSelector: {{matchLabels: {{ns: y}}}}}}]"),
                )),
                Step::Apply(np(
                    "x",
                    "from-zc",
                    &format!(
                        "{XA}\ningress:\n- from: [{{namespaceSelector: {{matchLabels: {{ns: z}}}}, podSelector: {{matchLabels: {{pod: c}}}}}}]"
                    ),
                )),
                check(80, Tcp, INTO_XA_FROM_Y_AND_ZC),
                Step::DeleteManifest(format!(
                    "{}{}",
                    np("x", "from-y", "podSelector: {}"),
                    np("x", "from-zc", "podSelector: {}")
                )),
                check(80, Tcp, ALL_OPEN),
            ],
        ),
    ]
}

/// ipBlock with except, per family: IPv4 cuts out node 2's pods, IPv6 node 3's.
fn ip_block(nets: &Subnets) -> Scenario {
    let spec = format!(
        "{XA}\ningress:\n- from:\n  - ipBlock: {{cidr: 10.244.0.0/16, except: [{}]}}\n  - ipBlock: {{cidr: 'fd00:10:244::/56', except: ['{}']}}",
        nets.node2_v4, nets.node3_v6
    );
    scenario(
        "ipBlock with except",
        vec![
            Step::Apply(np("x", "cidr", &spec)),
            check(80, Tcp, INTO_XA_NOT_FROM_NODE2),
            check6(80, Tcp, INTO_XA_NOT_FROM_NODE3),
        ],
    )
}

/// Named ports, endPort ranges, UDP.
fn ports() -> Vec<Scenario> {
    vec![
        scenario(
            "named ports",
            vec![
                Step::Apply(np(
                    "x",
                    "named",
                    &format!(
                        "{XA}\ningress:\n- ports: [{{port: serve-81-tcp}}, {{protocol: UDP, port: serve-80-udp}}, {{protocol: SCTP, port: serve-80-sctp}}]"
                    ),
                )),
                check(80, Tcp, INTO_XA_DENIED),
                check(81, Tcp, ALL_OPEN),
                check(80, Udp, ALL_OPEN),
                check(81, Udp, INTO_XA_DENIED),
            ],
        ),
        scenario(
            "endPort range",
            vec![
                Step::Apply(np(
                    "x",
                    "range",
                    &format!("{XA}\ningress:\n- ports: [{{protocol: TCP, port: 81, endPort: 90}}]"),
                )),
                check(80, Tcp, INTO_XA_DENIED),
                check(81, Tcp, ALL_OPEN),
            ],
        ),
        scenario(
            "UDP only",
            vec![
                Step::Apply(np(
                    "x",
                    "udp",
                    &format!("{XA}\ningress:\n- ports: [{{protocol: UDP, port: 81}}]"),
                )),
                check(81, Udp, ALL_OPEN),
                check(80, Udp, INTO_XA_DENIED),
                check(81, Tcp, INTO_XA_DENIED),
            ],
        ),
    ]
}

/// Egress: deny-all, to a namespace, and policyTypes inferred from egress rules.
fn egress() -> Vec<Scenario> {
    vec![
        scenario(
            "egress deny-all",
            vec![
                Step::Apply(np("x", "no-egress", "podSelector: {}\npolicyTypes: [Egress]")),
                check(80, Tcp, NO_EGRESS_FROM_X),
                check(81, Udp, NO_EGRESS_FROM_X),
                check6(80, Tcp, NO_EGRESS_FROM_X),
            ],
        ),
        scenario(
            "egress to a namespace",
            vec![
                Step::Apply(np(
                    "x",
                    "to-y",
                    "podSelector: {}\npolicyTypes: [Egress]\negress:\n- to: [{namespaceSelector: {matchLabels: {ns: y}}}]",
                )),
                check(80, Tcp, TO_Y_ONLY),
                check6(81, Udp, TO_Y_ONLY),
            ],
        ),
        scenario(
            "policyTypes inferred from egress rules (ingress denied too)",
            vec![
                Step::Apply(np(
                    "x",
                    "to-y",
                    "podSelector: {}\negress:\n- to: [{namespaceSelector: {matchLabels: {ns: y}}}]",
                )),
                check(80, Tcp, X_TO_Y_ONLY_AND_NO_INGRESS),
            ],
        ),
    ]
}

/// Label changes on pods and namespaces, policy update and delete.
fn changes() -> Vec<Scenario> {
    vec![
        scenario(
            "pod label changes",
            vec![
                Step::Apply(np(
                    "x",
                    "clients",
                    &format!(
                        "{XA}\ningress:\n- from: [{{namespaceSelector: {{}}, podSelector: {{matchLabels: {{role: client}}}}}}]"
                    ),
                )),
                check(80, Tcp, INTO_XA_DENIED),
                Step::PodLabel("z/b", &["role=client"]),
                check(80, Tcp, INTO_XA_FROM_ZB),
                // x/b now matches the policy's podSelector: it joins x/a's group.
                Step::PodLabel("x/b", &["pod=a"]),
                check(80, Tcp, INTO_XA_XB_FROM_ZB),
                Step::PodLabel("z/b", &["role-"]),
                Step::PodLabel("x/b", &["pod=b"]),
                check(80, Tcp, INTO_XA_DENIED),
            ],
        ),
        scenario(
            "namespace label changes",
            vec![
                Step::Apply(np(
                    "x",
                    "blue",
                    &format!(
                        "{XA}\ningress:\n- from: [{{namespaceSelector: {{matchLabels: {{team: blue}}}}}}]"
                    ),
                )),
                check(80, Tcp, INTO_XA_DENIED),
                Step::NsLabel("z", &["team=blue"]),
                check(80, Tcp, INTO_XA_FROM_Z_ONLY),
                // A Namespace manifest relabels too.
                Step::Apply(
                    "apiVersion: v1\nkind: Namespace\nmetadata: {name: y, labels: {ns: y, team: blue}}\n"
                        .into(),
                ),
                Step::NsLabel("z", &["team-"]),
                check(80, Tcp, INTO_XA_FROM_Y_ONLY),
            ],
        ),
        scenario(
            "policy update and delete",
            vec![
                Step::Apply(np(
                    "x",
                    "p",
                    &format!("{XA}\ningress:\n- from: [{{namespaceSelector: {{matchLabels: {{ns: y}}}}}}]"),
                )),
                check(80, Tcp, INTO_XA_FROM_Y_ONLY),
                Step::Apply(np(
                    "x",
                    "p",
                    &format!("{XA}\ningress:\n- from: [{{namespaceSelector: {{matchLabels: {{ns: z}}}}}}]"),
                )),
                check(80, Tcp, INTO_XA_FROM_Z_ONLY),
                Step::DeletePolicy("x/p"),
                check(80, Tcp, ALL_OPEN),
            ],
        ),
    ]
}
