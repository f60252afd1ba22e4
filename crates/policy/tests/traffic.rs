//! Kernel tier (root): real TCP connections between pods on one Linux bridge, filtered by the
//! compiled ruleset, must follow [`twill_policy::evaluate`] exactly — over IPv4 and IPv6,
//! allowed replies included. This is what settles the hook placement: intra-bridge traffic
//! reaches the inet forward hook through br_netfilter (`net.bridge.bridge-nf-call-iptables`
//! and `-ip6tables` = 1 in the node's namespace).

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use testkit::{TestNs, require_privileges};
use twill_policy::{Endpoint, Family, PodRef, Protocol, apply_batch, compile, evaluate_family};

const POLICIES: &str = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: x}
spec:
  podSelector: {}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-from-y-on-http, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]
    ports: [{port: serve-80-tcp}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b-not-to-ya, namespace: x}
spec:
  podSelector: {matchLabels: {pod: b}}
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock: {cidr: 10.244.0.0/16, except: [10.244.1.20/32]}
    - ipBlock: {cidr: 'fd00::/16', except: ['fd00:1::20/128']}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-to-x-web, namespace: y}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: x}}}]
    ports: [{port: 80, endPort: 81}]
";

/// The admin tiers around NetworkPolicy: Pass to NetworkPolicy, Deny and Allow over it, the
/// baseline for a pod no NetworkPolicy selects, admin egress.
const ADMIN_POLICIES: &str = "
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: guard-x}
spec:
  priority: 10
  subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: x}}}
  ingress:
  - {name: pass-y-http, action: Pass, from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: y}}}], ports: [{portNumber: {port: 80}}]}
  - {name: deny-81, action: Deny, from: [{namespaces: {}}], ports: [{portRange: {start: 81, end: 82}}]}
  egress:
  - {name: b-may-81, action: Allow, to: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {pod: a}}}}], ports: [{namedPort: serve-81-tcp}]}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: web-to-y-a}
spec:
  priority: 5
  subject: {pods: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}, podSelector: {matchLabels: {pod: a}}}}
  ingress:
  - {action: Allow, from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: x}}}], ports: [{portNumber: {port: 80}}]}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  ingress:
  - {action: Deny, from: [{namespaces: {}}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-from-y-on-http, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]
    ports: [{port: serve-80-tcp}]
";

/// Listeners on [::]:80 and [::]:81 (dual-stack) in a pod, answering `ok`; stopped on drop.
struct Servers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Servers {
    fn start(pod: &TestNs) -> Servers {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for port in [80u16, 81] {
            // The socket belongs to the namespace it was created in, whichever thread uses it.
            let listener = pod
                .ns()
                .run(|| TcpListener::bind(("::", port)))
                .unwrap()
                .unwrap_or_else(|e| panic!("listen on {port} in {}: {e}", pod.name()));
            listener.set_nonblocking(true).unwrap();
            let stop = stop.clone();
            threads.push(std::thread::spawn(move || serve(listener, &stop)));
        }
        Servers { stop, threads }
    }
}

fn serve(listener: TcpListener, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut conn, _)) => {
                let _ = conn.set_nonblocking(false);
                let _ = conn.write_all(b"ok");
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// How long a connection may take to open: generous where the model expects it to (a busy
/// machine), short where it expects a drop (a connection that opens anyway does so at once).
fn patience(allowed: bool) -> Duration {
    Duration::from_millis(if allowed { 2000 } else { 400 })
}

/// True when a connection from `pod` to `addr` opens within `patience` and the answer (a
/// reply packet) arrives.
fn connects(pod: &TestNs, addr: SocketAddr, patience: Duration) -> bool {
    let attempt = || -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&addr, patience)?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer)
    };
    pod.ns().run(attempt).unwrap().is_ok_and(|a| a == "ok")
}

/// A node namespace with bridge br0 and br_netfilter on, and pod namespaces on it.
fn node_with_bridge() -> TestNs {
    testkit::require_br_netfilter();
    let node = TestNs::new("pol");
    for (key, value) in
        [("net.bridge.bridge-nf-call-iptables", "1"), ("net.bridge.bridge-nf-call-ip6tables", "1")]
    {
        let out = node.exec(&["sysctl", "-w", &format!("{key}={value}")]);
        assert!(out.status.success(), "sysctl {key}: {}", String::from_utf8_lossy(&out.stderr));
    }
    node.exec_ok(&["ip", "link", "add", "br0", "type", "bridge"]);
    node.exec_ok(&["ip", "addr", "add", "10.244.1.1/24", "dev", "br0"]);
    node.exec_ok(&["ip", "addr", "add", "fd00:1::1/64", "dev", "br0", "nodad"]);
    node.exec_ok(&["ip", "link", "set", "br0", "up"]);
    node
}

fn attach(node: &TestNs, pod: &TestNs, (ns, name): (&str, &str)) {
    let veth = format!("v{ns}{name}");
    node.exec_ok(&["ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", pod.name()]);
    node.exec_ok(&["ip", "link", "set", &veth, "master", "br0", "up"]);
    let v4 = format!("{}/24", common::ip4(ns, name));
    let v6 = format!("{}/64", common::ip6(ns, name));
    pod.exec_ok(&["ip", "addr", "add", &v4, "dev", "eth0"]);
    pod.exec_ok(&["ip", "addr", "add", &v6, "dev", "eth0", "nodad"]);
    pod.exec_ok(&["ip", "link", "set", "eth0", "up"]);
}

#[test]
fn connections_on_a_bridge_follow_evaluate() {
    connections_follow_evaluate(POLICIES);
}

#[test]
fn connections_through_admin_tiers_follow_evaluate() {
    connections_follow_evaluate(ADMIN_POLICIES);
}

fn connections_follow_evaluate(policies: &str) {
    require_privileges();
    let world = common::world_with(policies);
    let names = [("x", "a"), ("x", "b"), ("y", "a")];
    let node = node_with_bridge();
    let pods: Vec<TestNs> = names.iter().map(|_| TestNs::new("polp")).collect();
    for (pod, name) in pods.iter().zip(names) {
        attach(&node, pod, name);
    }
    let refs: Vec<PodRef> = names.iter().map(|(ns, n)| PodRef::new(ns, n)).collect();
    let rs = compile(&world, &refs);
    let mut conn = fw::nft::Conn::in_netns(node.ns()).unwrap_or_else(|e| panic!("open: {e}"));
    conn.apply(&apply_batch(&rs)).unwrap_or_else(|e| panic!("apply: {e}"));
    let _servers: Vec<Servers> = pods.iter().map(Servers::start).collect();

    let mut mismatches = Vec::new();
    let mut allowed = 0;
    for (i, from) in refs.iter().enumerate() {
        for (j, to) in refs.iter().enumerate().filter(|(j, _)| *j != i) {
            for family in [Family::V4, Family::V6] {
                for port in [80u16, 81] {
                    let (fe, te) = (Endpoint::Pod(from.clone()), Endpoint::Pod(to.clone()));
                    let verdict = evaluate_family(&world, &fe, &te, port, Protocol::Tcp, family);
                    let (ns, name) = names[j];
                    let ip: IpAddr =
                        if family == Family::V4 { common::ip4(ns, name) } else { common::ip6(ns, name) };
                    let got = connects(&pods[i], SocketAddr::new(ip, port), patience(verdict.allowed()));
                    allowed += usize::from(got);
                    if got != verdict.allowed() {
                        mismatches.push(format!("connected: {got}, but\n{verdict}"));
                    }
                }
            }
        }
    }
    if !mismatches.is_empty() {
        let listed = node.exec(&["nft", "list", "ruleset"]);
        panic!(
            "{} of 24 connections disagree with evaluate:\n{}\n\n{}",
            mismatches.len(),
            mismatches.join("\n"),
            String::from_utf8_lossy(&listed.stdout)
        );
    }
    assert!(allowed > 0 && allowed < 24, "the policies both allow and deny something ({allowed} allowed)");
}

/// An AdminNetworkPolicy `nodes` peer: pods connecting to their node's own addresses (the
/// `input` hook) are judged like `evaluate` judges a connection to that address.
#[test]
fn connections_to_a_selected_node_follow_evaluate() {
    require_privileges();
    let mut world = common::world_with(
        "apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: x-not-to-node-81}
spec:
  priority: 1
  subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: x}}}
  egress:
  - {action: Deny, to: [{nodes: {matchLabels: {role: worker}}}], ports: [{portNumber: {port: 81}}]}
",
    );
    let node_ips: Vec<IpAddr> = vec!["10.244.1.1".parse().unwrap(), "fd00:1::1".parse().unwrap()];
    let labels = [("role".to_string(), "worker".to_string())].into();
    world.add_node(twill_policy::Node { name: "n1".into(), ips: node_ips.clone(), labels });
    let names = [("x", "a"), ("y", "a")];
    let node = node_with_bridge();
    let pods: Vec<TestNs> = names.iter().map(|_| TestNs::new("polp")).collect();
    for (pod, name) in pods.iter().zip(names) {
        attach(&node, pod, name);
    }
    let refs: Vec<PodRef> = names.iter().map(|(ns, n)| PodRef::new(ns, n)).collect();
    let rs = compile(&world, &refs);
    let mut conn = fw::nft::Conn::in_netns(node.ns()).unwrap_or_else(|e| panic!("open: {e}"));
    conn.apply(&apply_batch(&rs)).unwrap_or_else(|e| panic!("apply: {e}"));
    let _server = Servers::start(&node);
    let mut mismatches = Vec::new();
    let mut allowed = 0;
    for (pod, from) in pods.iter().zip(&refs) {
        for ip in &node_ips {
            for port in [80u16, 81] {
                let verdict = evaluate_family(
                    &world,
                    &Endpoint::Pod(from.clone()),
                    &Endpoint::Ip(*ip),
                    port,
                    Protocol::Tcp,
                    Family::of(*ip),
                );
                let got = connects(pod, SocketAddr::new(*ip, port), patience(verdict.allowed()));
                allowed += usize::from(got);
                if got != verdict.allowed() {
                    mismatches.push(format!("connected: {got}, but\n{verdict}"));
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(allowed, 6, "x/a is denied port 81 on both families, everything else connects");
}
