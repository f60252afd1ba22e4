//! NetworkPolicy semantics where egress is involved, after the Kubernetes e2e network-policy
//! tests: the same full 9×9 truth tables as tests/semantics.rs (rows sources, columns
//! destinations, `.` allowed, `X` denied).

mod common;

use common::{ALL_OPEN, INTO_XA_DENIED, INTO_XA_FROM_XB_ONLY, assert_table, world_with};
use testkit::policy_docs::np;
use twill_policy::Protocol::Tcp;

#[test]
fn default_deny_all() {
    let w = world_with(&np("x", "deny-all", "podSelector: {}\npolicyTypes: [Ingress, Egress]"));
    assert_table(
        &w,
        80,
        Tcp,
        "
        .XX XXX XXX
        X.X XXX XXX
        XX. XXX XXX
        XXX ... ...
        XXX ... ...
        XXX ... ...
        XXX ... ...
        XXX ... ...
        XXX ... ...",
    );
}

#[test]
fn egress_ip_block_with_except_applies_to_pod_ips() {
    // 10.244.1.11 is x/b.
    let w = world_with(&np(
        "x",
        "cidr-except",
        "podSelector: {matchLabels: {pod: a}}\npolicyTypes: [Egress]\negress:\n- to: [{ipBlock: {cidr: 10.244.0.0/16, except: [10.244.1.11/32]}}]",
    ));
    let mut table = ALL_OPEN.replacen("... ... ...", ".X. ... ...", 1);
    assert_table(&w, 80, Tcp, &table);
    // A second policy allowing exactly x/b adds up: the except of the first no longer matters.
    let w = world_with(&format!(
        "{}{}",
        np(
            "x",
            "cidr-except",
            "podSelector: {matchLabels: {pod: a}}\npolicyTypes: [Egress]\negress:\n- to: [{ipBlock: {cidr: 10.244.0.0/16, except: [10.244.1.11/32]}}]",
        ),
        np(
            "x",
            "x-b",
            "podSelector: {matchLabels: {pod: a}}\npolicyTypes: [Egress]\negress:\n- to: [{ipBlock: {cidr: 10.244.1.11/32}}]"
        ),
    ));
    table = ALL_OPEN.to_string();
    assert_table(&w, 80, Tcp, &table);
}

#[test]
fn named_port_egress_resolves_against_the_destination() {
    let w = world_with(&np(
        "x",
        "egress-named",
        "podSelector: {}\npolicyTypes: [Egress]\negress:\n- ports: [{port: serve-80-tcp}]",
    ));
    assert_table(&w, 80, Tcp, ALL_OPEN);
    assert_table(
        &w,
        81,
        Tcp,
        "
        .XX XXX XXX
        X.X XXX XXX
        XX. XXX XXX
        ... ... ...
        ... ... ...
        ... ... ...
        ... ... ...
        ... ... ...
        ... ... ...",
    );
}

#[test]
fn egress_deny_all_for_one_pod() {
    let w =
        world_with(&np("x", "deny-egress-a", "podSelector: {matchLabels: {pod: a}}\npolicyTypes: [Egress]"));
    let table = ALL_OPEN.replacen("... ... ...", ".XX XXX XXX", 1);
    assert_table(&w, 80, Tcp, &table);
}

#[test]
fn egress_to_a_namespace() {
    let w = world_with(&np(
        "x",
        "to-y",
        "podSelector: {}\npolicyTypes: [Egress]\negress:\n- to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]",
    ));
    assert_table(
        &w,
        80,
        Tcp,
        "
        .XX ... XXX
        X.X ... XXX
        XX. ... XXX
        ... ... ...
        ... ... ...
        ... ... ...
        ... ... ...
        ... ... ...
        ... ... ...",
    );
}

#[test]
fn egress_deny_wins_even_if_the_server_allows() {
    let w = world_with(&format!(
        "{}{}{}",
        np(
            "x",
            "to-y-a",
            "podSelector: {matchLabels: {pod: a}}\npolicyTypes: [Egress]\negress:\n- to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}, podSelector: {matchLabels: {pod: a}}}]",
        ),
        np(
            "y",
            "ya-from-xa",
            "podSelector: {matchLabels: {pod: a}}\ningress:\n- from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: x}}, podSelector: {matchLabels: {pod: a}}}]",
        ),
        np(
            "y",
            "yb-from-xa",
            "podSelector: {matchLabels: {pod: b}}\ningress:\n- from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: x}}, podSelector: {matchLabels: {pod: a}}}]",
        ),
    ));
    assert_table(
        &w,
        80,
        Tcp,
        "
        .XX .XX XXX
        ... XX. ...
        ... XX. ...
        ... .X. ...
        ... X.. ...
        ... XX. ...
        ... XX. ...
        ... XX. ...
        ... XX. ...",
    );
}

#[test]
fn ingress_and_egress_together() {
    let w = world_with(&np(
        "x",
        "both",
        "podSelector: {matchLabels: {pod: a}}\npolicyTypes: [Egress, Ingress]\ningress:\n- from: [{podSelector: {matchLabels: {pod: b}}}]\negress:\n- ports: [{port: 80}]",
    ));
    assert_table(&w, 80, Tcp, INTO_XA_FROM_XB_ONLY);
    assert_table(&w, 81, Tcp, &INTO_XA_FROM_XB_ONLY.replacen("... ... ...", ".XX XXX XXX", 1));
}

#[test]
fn policy_types_are_inferred_from_the_rules() {
    // No policyTypes and egress rules: Ingress AND Egress. The policy has no ingress rules,
    // so x/a's ingress is denied entirely — the classic surprise.
    let egress_only = "podSelector: {matchLabels: {pod: a}}\negress:\n- to: [{namespaceSelector: {}}]";
    let w = world_with(&np("x", "inferred", egress_only));
    assert_table(&w, 80, Tcp, INTO_XA_DENIED);
    let explicit = format!("{egress_only}\npolicyTypes: [Egress]");
    assert_table(&world_with(&np("x", "explicit", &explicit)), 80, Tcp, ALL_OPEN);
}
