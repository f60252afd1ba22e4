//! The Kubernetes e2e network-policy world: namespaces x, y, z with pods a, b, c each, every
//! pod serving ports 80 and 81 over TCP, UDP and SCTP with the e2e port names
//! (`serve-80-tcp`, ...). Pods a and b run on node n1, pods c on node n2.

#![allow(dead_code)]

pub mod golden_cases;

use std::net::IpAddr;

use twill_policy::{
    Endpoint, NamedPort, Namespace, Node, Pod, PodRef, Protocol, World, evaluate, parse_yaml,
};

/// The tables the lab checks with real connections too.
// Every test binary that includes this module uses only some of them.
#[allow(unused_imports)]
pub use testkit::truth::{ALL_OPEN, INTO_X_DENIED, INTO_XA_DENIED, INTO_XA_FROM_Y_ONLY};

/// x/a reachable only from x/b (and loopback): the semantics tests' ingress-from-a-pod case.
pub const INTO_XA_FROM_XB_ONLY: &str = "
    ... ... ...
    ... ... ...
    X.. ... ...
    X.. ... ...
    X.. ... ...
    X.. ... ...
    X.. ... ...
    X.. ... ...
    X.. ... ...";

pub const NAMESPACES: [&str; 3] = ["x", "y", "z"];
pub const PODS: [&str; 3] = ["a", "b", "c"];

/// `x/a`, `x/b`, ... `z/c`: the rows and columns of every truth table.
pub fn all_pods() -> Vec<PodRef> {
    NAMESPACES.iter().flat_map(|ns| PODS.iter().map(move |p| PodRef::new(ns, p))).collect()
}

/// The IPv4 address of pod `p` (index 0..3) in namespace `n` (index 0..3): 10.244.N.x where N
/// is the node (1 for a and b, 2 for c).
pub fn ip4(ns: &str, pod: &str) -> IpAddr {
    let (n, p) = indexes(ns, pod);
    let node = if pod == "c" { 2 } else { 1 };
    format!("10.244.{node}.{}", 10 * (n + 1) + p).parse().unwrap()
}

pub fn ip6(ns: &str, pod: &str) -> IpAddr {
    let (n, p) = indexes(ns, pod);
    let node = if pod == "c" { 2 } else { 1 };
    format!("fd00:{node}::{}", 10 * (n + 1) + p).parse().unwrap()
}

fn indexes(ns: &str, pod: &str) -> (usize, usize) {
    let n = NAMESPACES.iter().position(|x| *x == ns).unwrap();
    let p = PODS.iter().position(|x| *x == pod).unwrap();
    (n, p)
}

pub fn e2e_ports() -> Vec<NamedPort> {
    let mut out = Vec::new();
    for proto in Protocol::ALL {
        for port in [80, 81] {
            let name = format!("serve-{port}-{}", proto.as_nft());
            out.push(NamedPort { name, port, protocol: proto });
        }
    }
    out
}

/// The 3×3 world with no policies.
pub fn world() -> World {
    let mut w = World::new();
    for ns in NAMESPACES {
        w.add_namespace(Namespace::new(ns, Default::default()));
        for p in PODS {
            w.add_pod(Pod {
                namespace: ns.into(),
                name: p.into(),
                labels: [("pod".to_string(), p.to_string())].into(),
                ips: vec![ip4(ns, p), ip6(ns, p)],
                ports: e2e_ports(),
                node: if p == "c" { "n2".into() } else { "n1".into() },
            });
        }
    }
    w.add_node(Node { name: "n1".into(), ips: vec!["192.168.0.1".parse().unwrap()], labels: role("n1") });
    w.add_node(Node { name: "n2".into(), ips: vec!["192.168.0.2".parse().unwrap()], labels: role("n2") });
    w
}

/// Node labels: `node: NAME`.
fn role(name: &str) -> twill_policy::Labels {
    [("node".to_string(), name.to_string())].into()
}

/// The world plus every object of `yaml`.
pub fn world_with(yaml: &str) -> World {
    let mut w = world();
    for o in parse_yaml(yaml).unwrap_or_else(|e| panic!("bad test policy: {e}\n{yaml}")) {
        w.add_object(o);
    }
    w
}

/// The truth table as 9 lines of `... ... ...` (rows: from, columns: to; `.` allowed,
/// `X` denied), in the order of [`all_pods`].
pub fn table(w: &World, port: u16, proto: Protocol) -> String {
    let pods = all_pods();
    let mut out = String::new();
    for from in &pods {
        for (i, to) in pods.iter().enumerate() {
            if i > 0 && i % 3 == 0 {
                out.push(' ');
            }
            let v = evaluate(w, &Endpoint::Pod(from.clone()), &Endpoint::Pod(to.clone()), port, proto);
            out.push(if v.allowed() { '.' } else { 'X' });
        }
        out.push('\n');
    }
    out
}

/// Asserts the full 9×9 table; on a mismatch prints both tables and the explanation of every
/// differing cell.
pub fn assert_table(w: &World, port: u16, proto: Protocol, expected: &str) {
    let expected: String =
        expected.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| format!("{l}\n")).collect();
    let got = table(w, port, proto);
    if got == expected {
        return;
    }
    let pods = all_pods();
    let mut why = String::new();
    for (r, (gl, el)) in got.lines().zip(expected.lines()).enumerate() {
        let cells = |l: &str| l.chars().filter(|c| *c != ' ').collect::<Vec<_>>();
        for (c, (g, e)) in cells(gl).into_iter().zip(cells(el)).enumerate() {
            if g != e {
                let v = evaluate(
                    w,
                    &Endpoint::Pod(pods[r].clone()),
                    &Endpoint::Pod(pods[c].clone()),
                    port,
                    proto,
                );
                why.push_str(&format!("{v}\n"));
            }
        }
    }
    panic!("{proto}/{port}: truth table differs\nexpected:\n{expected}got:\n{got}\n{why}");
}
