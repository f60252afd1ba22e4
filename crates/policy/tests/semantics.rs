//! NetworkPolicy semantics, case by case after the Kubernetes e2e network-policy tests
//! (test/e2e/network/netpol): each case asserts the FULL 9×9 truth table of the x/y/z × a/b/c
//! world for one port and protocol. Rows are sources, columns destinations, in the order
//! x/a x/b x/c  y/a y/b y/c  z/a z/b z/c; `.` allowed, `X` denied. A pod talking to itself is
//! always allowed (loopback never leaves the pod; the e2e suite ignores it too).

mod common;

use common::{
    ALL_OPEN, INTO_X_DENIED, INTO_XA_DENIED, INTO_XA_FROM_XB_ONLY, INTO_XA_FROM_Y_ONLY, assert_table,
    world_with,
};
use testkit::policy_docs::np;
use twill_policy::Protocol::{Sctp, Tcp, Udp};

#[test]
fn no_policy_allows_everything() {
    assert_table(&world_with(""), 80, Tcp, ALL_OPEN);
}

#[test]
fn default_deny_ingress() {
    let w = world_with(&np("x", "deny-ingress", "podSelector: {}"));
    assert_table(&w, 80, Tcp, INTO_X_DENIED);
    assert_table(&w, 81, Udp, INTO_X_DENIED);
}

#[test]
fn allow_from_same_namespace_pod_selector() {
    let w = world_with(&np(
        "x",
        "x-a-allows-x-b",
        "podSelector: {matchLabels: {pod: a}}\ningress:\n- from: [{podSelector: {matchLabels: {pod: b}}}]",
    ));
    assert_table(&w, 80, Tcp, INTO_XA_FROM_XB_ONLY);
}

#[test]
fn deny_ingress_from_other_namespaces() {
    let w = world_with(&np("x", "same-ns", "podSelector: {}\ningress:\n- from: [{podSelector: {}}]"));
    assert_table(
        &w,
        80,
        Tcp,
        "
        ... ... ...
        ... ... ...
        ... ... ...
        XXX ... ...
        XXX ... ...
        XXX ... ...
        XXX ... ...
        XXX ... ...
        XXX ... ...",
    );
}

#[test]
fn namespace_selector_by_name_label() {
    let w = world_with(&np(
        "x",
        "from-y",
        "podSelector: {matchLabels: {pod: a}}\ningress:\n- from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]",
    ));
    assert_table(&w, 80, Tcp, INTO_XA_FROM_Y_ONLY);
    let w = world_with(&np(
        "x",
        "from-y",
        "podSelector: {matchLabels: {pod: a}}\ningress:\n- from:\n  - namespaceSelector:\n      matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [y]}]",
    ));
    assert_table(&w, 80, Tcp, INTO_XA_FROM_Y_ONLY);
}

#[test]
fn empty_namespace_selector_is_every_namespace() {
    let w = world_with(&np(
        "x",
        "from-anywhere",
        "podSelector: {matchLabels: {pod: a}}\ningress:\n- from: [{namespaceSelector: {}}]",
    ));
    assert_table(&w, 80, Tcp, ALL_OPEN);
}

#[test]
fn pod_and_namespace_selector_in_one_peer_is_and() {
    let w = world_with(&np(
        "x",
        "and",
        "podSelector: {matchLabels: {pod: a}}\ningress:\n- from:\n  - namespaceSelector:\n      matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}]\n    podSelector: {matchLabels: {pod: b}}",
    ));
    assert_table(
        &w,
        80,
        Tcp,
        "
        ... ... ...
        X.. ... ...
        X.. ... ...
        X.. ... ...
        ... ... ...
        X.. ... ...
        X.. ... ...
        ... ... ...
        X.. ... ...",
    );
}

#[test]
fn pod_and_namespace_selector_in_two_peers_is_or() {
    let w = world_with(&np(
        "x",
        "or",
        "podSelector: {matchLabels: {pod: a}}\ningress:\n- from:\n  - namespaceSelector:\n      matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}]\n  - podSelector: {matchLabels: {pod: b}}",
    ));
    assert_table(
        &w,
        80,
        Tcp,
        "
        ... ... ...
        ... ... ...
        X.. ... ...
        ... ... ...
        ... ... ...
        ... ... ...
        ... ... ...
        ... ... ...
        ... ... ...",
    );
}

#[test]
fn pod_selector_with_match_expressions() {
    let w = world_with(&np(
        "x",
        "not-a",
        "podSelector: {matchExpressions: [{key: pod, operator: NotIn, values: [a]}]}\npolicyTypes: [Ingress]",
    ));
    assert_table(
        &w,
        80,
        Tcp,
        "
        .XX ... ...
        ..X ... ...
        .X. ... ...
        .XX ... ...
        .XX ... ...
        .XX ... ...
        .XX ... ...
        .XX ... ...
        .XX ... ...",
    );
}

#[test]
fn ingress_ip_block_with_except() {
    // n1's pods are 10.244.1.0/24; y/a and y/b are 10.244.1.20 and .21; the c pods are on n2.
    let w = world_with(&np(
        "x",
        "cidr",
        "podSelector: {matchLabels: {pod: b}}\ningress:\n- from: [{ipBlock: {cidr: 10.244.1.0/24, except: [10.244.1.20/31]}}]",
    ));
    assert_table(
        &w,
        80,
        Tcp,
        "
        ... ... ...
        ... ... ...
        .X. ... ...
        .X. ... ...
        .X. ... ...
        .X. ... ...
        ... ... ...
        ... ... ...
        .X. ... ...",
    );
}

#[test]
fn named_port_ingress() {
    let w = world_with(&np("x", "named", "podSelector: {}\ningress:\n- ports: [{port: serve-81-tcp}]"));
    assert_table(&w, 81, Tcp, ALL_OPEN);
    assert_table(&w, 80, Tcp, INTO_X_DENIED);
    // The port entry's protocol is TCP (the default): UDP 81 is not serve-81-tcp.
    assert_table(&w, 81, Udp, INTO_X_DENIED);
}

#[test]
fn named_port_ingress_from_a_namespace() {
    let w = world_with(&np(
        "x",
        "named-from-y",
        "podSelector: {matchLabels: {pod: a}}\ningress:\n- from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]\n  ports: [{protocol: TCP, port: serve-80-tcp}]",
    ));
    assert_table(&w, 80, Tcp, INTO_XA_FROM_Y_ONLY);
    assert_table(&w, 81, Tcp, INTO_XA_DENIED);
}

#[test]
fn end_port_ranges() {
    let w = world_with(&np(
        "x",
        "ranges",
        "podSelector: {matchLabels: {pod: a}}\ningress:\n- ports:\n  - {port: 79, endPort: 80}\n  - {protocol: UDP, port: 81, endPort: 90}",
    ));
    assert_table(&w, 80, Tcp, ALL_OPEN);
    assert_table(&w, 81, Tcp, INTO_XA_DENIED);
    assert_table(&w, 81, Udp, ALL_OPEN);
    assert_table(&w, 80, Udp, INTO_XA_DENIED);
}

#[test]
fn sctp_is_not_tcp() {
    let w = world_with(&format!(
        "{}{}",
        np("x", "deny-ingress", "podSelector: {}"),
        np(
            "x",
            "sctp-81",
            "podSelector: {matchLabels: {pod: a}}\ningress:\n- ports: [{protocol: SCTP, port: 81}]"
        ),
    ));
    assert_table(&w, 81, Tcp, INTO_X_DENIED);
    assert_table(
        &w,
        81,
        Sctp,
        "
        .XX ... ...
        ..X ... ...
        .X. ... ...
        .XX ... ...
        .XX ... ...
        .XX ... ...
        .XX ... ...
        .XX ... ...
        .XX ... ...",
    );
}

#[test]
fn any_port_of_one_protocol() {
    let w = world_with(&np(
        "x",
        "tcp-only",
        "podSelector: {matchLabels: {pod: a}}\ningress:\n- ports: [{protocol: TCP}]",
    ));
    assert_table(&w, 80, Tcp, ALL_OPEN);
    assert_table(&w, 9999, Tcp, ALL_OPEN);
    assert_table(&w, 80, Udp, INTO_XA_DENIED);
}

#[test]
fn multiple_policies_add_up() {
    let allow = |name: &str, port: u16| {
        np(
            "x",
            name,
            &format!(
                "podSelector: {{matchLabels: {{pod: a}}}}\ningress:\n- from: [{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: y}}}}}}]\n  ports: [{{port: {port}}}]"
            ),
        )
    };
    let w = world_with(&allow("port-81", 81));
    assert_table(&w, 81, Tcp, INTO_XA_FROM_Y_ONLY);
    assert_table(&w, 80, Tcp, INTO_XA_DENIED);
    let w = world_with(&format!("{}{}", allow("port-81", 81), allow("port-80", 80)));
    assert_table(&w, 81, Tcp, INTO_XA_FROM_Y_ONLY);
    assert_table(&w, 80, Tcp, INTO_XA_FROM_Y_ONLY);
    assert_table(&w, 82, Tcp, INTO_XA_DENIED);
}

#[test]
fn allow_all_policy_takes_precedence() {
    let only_80 = np("x", "only-80", "podSelector: {}\ningress:\n- ports: [{port: 80}]");
    let w = world_with(&only_80);
    assert_table(&w, 81, Tcp, INTO_X_DENIED);
    let w = world_with(&format!("{only_80}{}", np("x", "allow-all", "podSelector: {}\ningress:\n- {}")));
    assert_table(&w, 81, Tcp, ALL_OPEN);
    let only_80_out =
        np("x", "only-80-out", "podSelector: {}\npolicyTypes: [Egress]\negress:\n- ports: [{port: 80}]");
    let all_out = np("x", "all-out", "podSelector: {}\npolicyTypes: [Egress]\negress:\n- {}");
    assert_table(&world_with(&format!("{only_80_out}{all_out}")), 81, Tcp, ALL_OPEN);
}

#[test]
fn updates_replace_policies_and_labels() {
    // "should enforce updated policy": allow-all, then the same policy with `ingress: []`.
    let mut w = world_with(&np("x", "mutate", "podSelector: {}\ningress:\n- {}"));
    assert_table(&w, 81, Tcp, ALL_OPEN);
    for o in twill_policy::parse_yaml(&np("x", "mutate", "podSelector: {}\ningress: []")).unwrap() {
        w.add_object(o);
    }
    assert_table(&w, 81, Tcp, INTO_X_DENIED);
    // "should allow ingress access from updated namespace": a label added to y.
    let mut w = world_with(&np(
        "x",
        "from-ns2",
        "podSelector: {matchLabels: {pod: a}}\ningress:\n- from: [{namespaceSelector: {matchLabels: {ns2: updated}}}]",
    ));
    assert_table(&w, 80, Tcp, INTO_XA_DENIED);
    w.add_namespace(twill_policy::Namespace::new("y", [("ns2".to_string(), "updated".to_string())].into()));
    assert_table(&w, 80, Tcp, INTO_XA_FROM_Y_ONLY);
}
