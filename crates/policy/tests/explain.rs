//! `evaluate` beyond pod-to-pod tables: addresses outside the cluster, the node's own traffic,
//! address families, unknown pods — and the text `twill policy explain` prints.

mod common;

use common::world_with;
use twill_policy::{Decision, Endpoint, Family, PodRef, Protocol, RuleRef, evaluate, evaluate_family};

fn pod(s: &str) -> Endpoint {
    Endpoint::Pod(s.parse::<PodRef>().unwrap())
}

fn ip(s: &str) -> Endpoint {
    Endpoint::Ip(s.parse().unwrap())
}

const EGRESS_OUT: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: internet, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}}]
    ports: [{port: 443}]
  - ports: [{port: serve-80-tcp}]
";

#[test]
fn egress_to_addresses_outside_the_cluster() {
    let w = world_with(EGRESS_OUT);
    let v = evaluate(&w, &pod("x/a"), &ip("8.8.8.8"), 443, Protocol::Tcp);
    assert!(v.allowed(), "{v}");
    assert_eq!(v.ingress, Decision::NotAPod);
    assert!(!evaluate(&w, &pod("x/a"), &ip("10.1.1.1"), 443, Protocol::Tcp).allowed(), "except");
    // A named port resolves against the destination; an outside address has none.
    assert!(!evaluate(&w, &pod("x/a"), &ip("8.8.8.8"), 80, Protocol::Tcp).allowed());
    assert!(evaluate(&w, &pod("x/a"), &pod("y/b"), 80, Protocol::Tcp).allowed());
    assert!(!evaluate(&w, &pod("x/a"), &pod("y/b"), 443, Protocol::Tcp).allowed(), "pod IPs are in 10/8");
}

#[test]
fn ingress_from_outside_and_from_the_node() {
    let w = world_with(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: lb, namespace: x}
spec:
  podSelector: {}
  ingress:
  - from: [{ipBlock: {cidr: 203.0.113.0/24}}]
",
    );
    assert!(evaluate(&w, &ip("203.0.113.9"), &pod("x/a"), 80, Protocol::Tcp).allowed());
    assert!(!evaluate(&w, &ip("198.51.100.1"), &pod("x/a"), 80, Protocol::Tcp).allowed());
    // x/a runs on n1 (192.168.0.1): its own node always reaches it; n2 does not.
    let v = evaluate(&w, &ip("192.168.0.1"), &pod("x/a"), 80, Protocol::Tcp);
    assert_eq!(v.ingress, Decision::FromOwnNode);
    assert!(v.allowed());
    assert!(!evaluate(&w, &ip("192.168.0.2"), &pod("x/a"), 80, Protocol::Tcp).allowed());
    assert!(evaluate(&w, &ip("192.168.0.2"), &pod("x/c"), 80, Protocol::Tcp).allowed(), "x/c is on n2");
}

#[test]
fn ip_blocks_see_the_connection_family() {
    let w = world_with(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: v4-only, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{ipBlock: {cidr: 10.244.0.0/16}}]
",
    );
    let v = evaluate(&w, &pod("y/a"), &pod("x/a"), 80, Protocol::Tcp);
    assert_eq!(v.family, Family::V4, "pods list IPv4 first");
    assert!(v.allowed());
    let v6 = evaluate_family(&w, &pod("y/a"), &pod("x/a"), 80, Protocol::Tcp, Family::V6);
    assert!(!v6.allowed(), "{v6}");
    let from_v6 = evaluate(&w, &ip("fd00:1::20"), &pod("x/a"), 80, Protocol::Tcp);
    assert_eq!(from_v6.family, Family::V6);
    assert!(!from_v6.allowed());
}

#[test]
fn loopback_and_unknown_pods() {
    let w = world_with(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
",
    );
    let v = evaluate(&w, &pod("x/a"), &pod("x/a"), 80, Protocol::Tcp);
    assert_eq!((v.egress.clone(), v.ingress.clone()), (Decision::Loopback, Decision::Loopback));
    assert!(v.allowed());
    let v = evaluate(&w, &pod("y/a"), &pod("x/zz"), 80, Protocol::Tcp);
    assert_eq!(v.ingress, Decision::UnknownPod);
    assert!(!v.allowed());
}

#[test]
fn every_allowing_rule_is_named() {
    let w = world_with(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: one, namespace: x}
spec:
  podSelector: {}
  ingress: [{ports: [{port: 81}]}, {}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: two, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {}}]}]
",
    );
    let v = evaluate(&w, &pod("y/a"), &pod("x/a"), 81, Protocol::Tcp);
    let rule = |policy: &str, index| RuleRef {
        policy: policy.parse().unwrap(),
        direction: twill_policy::Direction::Ingress,
        index,
    };
    assert_eq!(v.ingress, Decision::Allowed(vec![rule("x/one", 0), rule("x/one", 1), rule("x/two", 0)]));
}

#[test]
fn explain_text() {
    let w = world_with(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: x}
spec:
  podSelector: {}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]
    ports: [{protocol: UDP, port: 53}]
",
    );
    let denied = evaluate(&w, &pod("x/b"), &pod("x/a"), 53, Protocol::Udp);
    assert_eq!(
        denied.to_string(),
        "x/b -> x/a UDP/53 (IPv4): denied
  egress  from x/b: allowed: not selected by any egress policy
  ingress to   x/a: denied: isolated by x/deny-all, x/from-y; no ingress rule matches"
    );
    let allowed = evaluate(&w, &pod("y/c"), &pod("x/a"), 53, Protocol::Udp);
    assert_eq!(
        allowed.to_string(),
        "y/c -> x/a UDP/53 (IPv4): allowed
  egress  from y/c: allowed: not selected by any egress policy
  ingress to   x/a: allowed by x/from-y ingress[0]"
    );
    let out = evaluate(&w, &ip("192.0.2.1"), &pod("y/a"), 80, Protocol::Tcp);
    assert_eq!(
        out.to_string(),
        "192.0.2.1 -> y/a TCP/80 (IPv4): allowed
  egress  from 192.0.2.1: not a pod: no policy applies
  ingress to   y/a: allowed: not selected by any ingress policy"
    );
}
