//! The admin tiers, case by case after the network-policy-api conformance suite (core:
//! AdminNetworkPolicy ingress/egress Allow, Deny and Pass by priority; the baseline) on the
//! x/y/z × a/b/c world, each asserting the FULL 9×9 truth table (rows: sources, columns:
//! destinations, `.` allowed, `X` denied; loopback is always allowed).

mod common;

use common::{ALL_OPEN, assert_table, world_with};
use testkit::policy_docs::{SUBJECT_X, anp, banp, from_ns, np};
use testkit::truth::{
    FROM_Y_DENIED_INTO_X, FROM_Y_TO_PODS_A_DENIED, FROM_Z_DENIED_INTO_X, INTO_X_FROM_Y_ONLY,
    INTO_X_FROM_Z_ONLY, INTO_Y_FROM_X_AND_Z_DENIED, WITHIN_NAMESPACES_ONLY, WITHIN_X_DENIED,
};
use twill_policy::Protocol::{Tcp, Udp};
use twill_policy::{Decision, Endpoint, PodRef, Tier, evaluate};

#[test]
fn anp_deny_beats_a_network_policy_allow() {
    let mut yaml = np("x", "allow-all", "podSelector: {}\ningress: [{}]");
    yaml += &anp("deny-y", 10, &format!("{SUBJECT_X}\ningress:\n- {{action: Deny, from: {}}}", from_ns("y")));
    let w = world_with(&yaml);
    assert_table(&w, 80, Tcp, FROM_Y_DENIED_INTO_X);
    assert_table(&w, 53, Udp, FROM_Y_DENIED_INTO_X);
}

#[test]
fn anp_allow_beats_a_network_policy_deny() {
    let mut yaml = np("x", "deny-all", "podSelector: {}");
    yaml +=
        &anp("allow-z", 10, &format!("{SUBJECT_X}\ningress:\n- {{action: Allow, from: {}}}", from_ns("z")));
    assert_table(&world_with(&yaml), 80, Tcp, INTO_X_FROM_Z_ONLY);
}

#[test]
fn pass_falls_through_to_network_policy() {
    let mut yaml = np(
        "x",
        "from-y-a",
        "podSelector: {}\ningress:\n- from: [{namespaceSelector: {}, podSelector: {matchLabels: {pod: a}}}]",
    );
    yaml += &anp("pass-y", 5, &format!("{SUBJECT_X}\ningress:\n- {{action: Pass, from: {}}}", from_ns("y")));
    yaml += &anp(
        "deny-all",
        10,
        &format!("{SUBJECT_X}\ningress:\n- {{action: Deny, from: [{{namespaces: {{}}}}]}}"),
    );
    let w = world_with(&yaml);
    assert_table(&w, 80, Tcp, INTO_X_FROM_Y_ONLY);
    let v = evaluate(&w, &pod("y", "b"), &pod("x", "a"), 80, Tcp);
    assert_eq!(
        v.to_string(),
        "y/b -> x/a TCP/80 (IPv4): denied\n  egress  from y/b: allowed: not selected by any egress policy\n  \
         ingress to   x/a: passed by AdminNetworkPolicy pass-y (priority 5) ingress[0] Pass; then denied: \
         isolated by x/from-y-a; no ingress rule matches"
    );
}

#[test]
fn baseline_is_the_default_only_where_no_network_policy_selects() {
    let mut yaml = np(
        "y",
        "from-x",
        "podSelector: {}\ningress:\n- from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: x}}}]",
    );
    yaml += &banp(
        "subject: {namespaces: {}}\ningress:\n- {name: deny-all, action: Deny, from: [{namespaces: {}}]}",
    );
    let w = world_with(&yaml);
    assert_table(&w, 80, Tcp, WITHIN_NAMESPACES_ONLY);
    let v = evaluate(&w, &pod("z", "a"), &pod("x", "a"), 80, Tcp);
    assert!(
        v.to_string().ends_with("denied by BaselineAdminNetworkPolicy default ingress[0] \"deny-all\" Deny"),
        "{v}"
    );
}

#[test]
fn priorities_order_policies_and_rules_order_a_policy() {
    let mut yaml =
        anp("late-allow", 20, &format!("{SUBJECT_X}\ningress:\n- {{action: Allow, from: {}}}", from_ns("y")));
    yaml += &anp(
        "early-deny",
        10,
        &format!(
            "{SUBJECT_X}\ningress:\n- {{action: Deny, from: {}, ports: [{{portNumber: {{port: 80}}}}]}}",
            from_ns("y")
        ),
    );
    let w = world_with(&yaml);
    assert_table(&w, 80, Tcp, FROM_Y_DENIED_INTO_X);
    assert_table(&w, 81, Tcp, ALL_OPEN);
    assert_table(&w, 80, Udp, ALL_OPEN);
    // Within one policy the first matching rule wins: Allow before Deny allows.
    let yaml = anp(
        "ordered",
        1,
        &format!(
            "{SUBJECT_X}\ningress:\n- {{action: Allow, from: {y}}}\n- {{action: Deny, from: {y}}}\n",
            y = from_ns("y")
        ),
    ) + &np("x", "deny-all", "podSelector: {}");
    let v = evaluate(&world_with(&yaml), &pod("y", "a"), &pod("x", "b"), 80, Tcp);
    assert!(matches!(&v.ingress, Decision::Tier(r) if r.index == 0 && r.tier == Tier::Admin), "{v}");
}

#[test]
fn egress_to_networks_and_named_ports() {
    // z/a and z/b are 10.244.1.30 and .31.
    let yaml = anp(
        "no-z-ab",
        3,
        &format!("{SUBJECT_X}\negress:\n- {{action: Deny, to: [{{networks: [10.244.1.30/31]}}]}}"),
    );
    let expected = "
        ... ... XX.
        ... ... XX.
        ... ... XX.
        ... ... ...
        ... ... ...
        ... ... ...
        ... ... ...
        ... ... ...
        ... ... ...";
    assert_table(&world_with(&yaml), 80, Tcp, expected);
    let yaml = anp(
        "no-dns-to-x-a",
        3,
        "subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: y}}}\negress:\n\
         - action: Deny\n  to: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {pod: a}}}}]\n  \
         ports: [{namedPort: serve-80-udp}, {portRange: {protocol: SCTP, start: 80, end: 81}}]",
    );
    let w = world_with(&yaml);
    assert_table(&w, 80, Udp, FROM_Y_TO_PODS_A_DENIED);
    assert_table(&w, 80, Tcp, ALL_OPEN);
    assert_table(&w, 81, Udp, ALL_OPEN);
}

#[test]
fn pass_then_baseline_when_no_network_policy_selects() {
    let mut yaml =
        anp("pass-y", 1, &format!("{SUBJECT_X}\ningress:\n- {{action: Pass, from: {}}}", from_ns("y")));
    yaml += &banp(&format!(
        "{SUBJECT_X}\ningress:\n- {{action: Allow, from: {}}}\n- {{action: Deny, from: [{{namespaces: {{}}}}]}}",
        from_ns("z")
    ));
    assert_table(&world_with(&yaml), 80, Tcp, INTO_X_FROM_Z_ONLY);
    // Once a NetworkPolicy selects x's pods the baseline is not consulted at all: z loses its
    // baseline Allow, y/b gains the NetworkPolicy's.
    yaml += &np(
        "x",
        "from-b",
        "podSelector: {}\ningress:\n- from: [{namespaceSelector: {}, podSelector: {matchLabels: {pod: b}}}]",
    );
    assert_table(
        &world_with(&yaml),
        80,
        Tcp,
        "
        .XX ... ...
        ... ... ...
        XX. ... ...
        XXX ... ...
        ... ... ...
        XXX ... ...
        XXX ... ...
        ... ... ...
        XXX ... ...",
    );
}

#[test]
fn egress_and_ingress_tiers_combine() {
    // x may not send to y (admin egress Deny) even though y's pods are open; y may not
    // receive from z (baseline ingress Deny).
    let mut yaml =
        anp("x-not-to-y", 1, &format!("{SUBJECT_X}\negress:\n- {{action: Deny, to: {}}}", from_ns("y")));
    yaml += &banp(&format!(
        "subject: {{namespaces: {{matchLabels: {{kubernetes.io/metadata.name: y}}}}}}\ningress:\n- {{action: Deny, from: {}}}",
        from_ns("z")
    ));
    assert_table(&world_with(&yaml), 80, Tcp, INTO_Y_FROM_X_AND_Z_DENIED);
}

#[test]
fn egress_to_nodes_by_label() {
    // n1 is 192.168.0.1 (node: n1), n2 192.168.0.2 (node: n2).
    let w = world_with(&anp(
        "no-n2",
        1,
        &format!(
            "{SUBJECT_X}\negress:\n- {{name: n2, action: Deny, to: [{{nodes: {{matchLabels: {{node: n2}}}}}}], ports: [{{portNumber: {{port: 10250}}}}]}}"
        ),
    ));
    let node = |ip: &str| Endpoint::Ip(ip.parse().unwrap());
    let v = evaluate(&w, &pod("x", "a"), &node("192.168.0.2"), 10250, Tcp);
    assert!(!v.allowed(), "{v}");
    assert!(
        v.to_string().contains(
            "egress  from x/a: denied by AdminNetworkPolicy no-n2 (priority 1) egress[0] \"n2\" Deny"
        ),
        "{v}"
    );
    assert!(evaluate(&w, &pod("x", "a"), &node("192.168.0.1"), 10250, Tcp).allowed());
    assert!(evaluate(&w, &pod("x", "a"), &node("192.168.0.2"), 10251, Tcp).allowed());
    assert!(evaluate(&w, &pod("y", "a"), &node("192.168.0.2"), 10250, Tcp).allowed(), "not a subject");
    assert_table(&w, 10250, Tcp, ALL_OPEN);
}

fn pod(ns: &str, name: &str) -> Endpoint {
    Endpoint::Pod(PodRef::new(ns, name))
}

/// After the conformance suite's ingress rules case: later rules shadowed by earlier ones
/// (Allow, then Deny and Pass of the same peers), port-specific Deny before Pass, an Allow
/// on one port before a Deny of everything else.
#[test]
fn conformance_ingress_rule_order() {
    let y = from_ns("y");
    let z = from_ns("z");
    let x = from_ns("x");
    let http = "ports: [{portNumber: {protocol: TCP, port: 80}}]";
    let w = world_with(&anp(
        "ingress-tcp",
        3,
        &format!(
            "{SUBJECT_X}\ningress:\n\
             - {{name: allow-from-y, action: Allow, from: {y}}}\n\
             - {{name: deny-from-y, action: Deny, from: {y}}}\n\
             - {{name: pass-from-y, action: Pass, from: {y}}}\n\
             - {{name: deny-from-z-80, action: Deny, from: {z}, {http}}}\n\
             - {{name: pass-from-z-80, action: Pass, from: {z}, {http}}}\n\
             - {{name: allow-from-x-80, action: Allow, from: {x}, {http}}}\n\
             - {{name: deny-from-x, action: Deny, from: {x}}}"
        ),
    ));
    assert_table(&w, 80, Tcp, FROM_Z_DENIED_INTO_X);
    assert_table(&w, 81, Tcp, WITHIN_X_DENIED);
    assert_table(&w, 80, Udp, WITHIN_X_DENIED);
    let v = evaluate(&w, &pod("y", "a"), &pod("x", "a"), 81, Tcp);
    assert!(matches!(&v.ingress, Decision::Tier(r) if r.name == "allow-from-y"), "{v}");
}
