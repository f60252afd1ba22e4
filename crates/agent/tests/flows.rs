//! Kernel tier (root): twilld's flow log reader, fed by a policy table compiled with
//! `--flow-logs all` in a node namespace of its own (a bridge with br_netfilter, three pod
//! namespaces), records an allowed connection with the rule that allowed it, a denied one
//! with the policy that isolates its destination, and one between pods no policy selects.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use policy::{FlowLogs, Namespace, Pod, World, apply_batch, compile_logged, parse_yaml};
use testkit::{TempDir, TestNs, require_privileges, wait_until};
use twill_agent::flows::{self, FlowQuery, FlowRecord, FlowStore, FlowView, SharedView};

const POLICY: &str = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: x}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: db}}}]
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{port: 80}]
";

const PODS: [(&str, &str); 3] = [("web", "10.250.0.2"), ("client", "10.250.0.3"), ("other", "10.250.0.4")];

fn world() -> World {
    let mut w = World::new();
    w.add_namespace(Namespace::new("x", Default::default()));
    for (name, ip) in PODS {
        let labels = [("app".to_string(), name.to_string())].into();
        let ips = vec![ip.parse().unwrap()];
        w.add_pod(Pod {
            namespace: "x".into(),
            name: name.into(),
            labels,
            ips,
            node: "n1".into(),
            ..Pod::default()
        });
    }
    parse_yaml(POLICY).unwrap().into_iter().for_each(|o| w.add_object(o));
    w
}

fn node_and_pods() -> (TestNs, Vec<TestNs>) {
    testkit::require_br_netfilter();
    let node = TestNs::new("flow");
    for key in ["net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"] {
        node.exec_ok(&["sysctl", "-w", &format!("{key}=1")]);
    }
    node.exec_ok(&["ip", "link", "add", "br0", "type", "bridge"]);
    node.exec_ok(&["ip", "link", "set", "br0", "up"]);
    let pods: Vec<TestNs> = PODS
        .iter()
        .map(|(name, ip)| {
            let pod = TestNs::new("flowp");
            let veth = format!("v{name}");
            node.exec_ok(&[
                "ip",
                "link",
                "add",
                &veth,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                pod.name(),
            ]);
            node.exec_ok(&["ip", "link", "set", &veth, "master", "br0", "up"]);
            pod.exec_ok(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
            pod.exec_ok(&["ip", "link", "set", "eth0", "up"]);
            pod
        })
        .collect();
    (node, pods)
}

/// Tries a TCP connection from `pod` to `ip`:80; true when it opens within `patience`.
fn connect(pod: &TestNs, ip: &str, patience: Duration) -> bool {
    let addr = SocketAddr::new(ip.parse().unwrap(), 80);
    pod.ns().run(|| TcpStream::connect_timeout(&addr, patience).is_ok()).unwrap()
}

/// For a connection that should open (a busy machine may be slow to answer).
const OPENS: Duration = Duration::from_secs(2);
/// For one that should be dropped (one that opens anyway does so at once).
const DROPPED: Duration = Duration::from_millis(500);

fn find<'a>(records: &'a [FlowRecord], src: &str, dst: &str) -> Option<&'a FlowRecord> {
    records.iter().find(|r| r.src_pod.as_deref() == Some(src) && r.dst_pod.as_deref() == Some(dst))
}

#[test]
fn connections_are_recorded_with_the_rule_that_decided() {
    require_privileges();
    let (node, pods) = node_and_pods();
    let world = world();
    let local = world.pods_on("n1");
    let (rs, sites) = compile_logged(&world, &local, FlowLogs::All);
    fw::nft::Conn::in_netns(node.ns()).unwrap().apply(&apply_batch(&rs)).unwrap();
    let _servers: Vec<TcpListener> =
        pods.iter().map(|p| p.ns().run(|| TcpListener::bind("0.0.0.0:80")).unwrap().unwrap()).collect();
    let view = SharedView::default();
    view.publish(FlowView::new("n1", world, sites));
    let store = Arc::new(FlowStore::default());
    let state = TempDir::new("flows");
    let stop = Arc::new(AtomicBool::new(true));
    stop.store(false, std::sync::atomic::Ordering::Relaxed);
    let spawned =
        node.ns().run(|| flows::spawn(view, store.clone(), state.path().to_path_buf(), stop.clone()));
    spawned.unwrap().expect("bind twill's nflog group in the node namespace");

    assert!(connect(&pods[1], PODS[0].1, OPENS), "client → web:80 is allowed");
    assert!(!connect(&pods[2], PODS[0].1, DROPPED), "other → web:80 is denied");
    assert!(connect(&pods[2], PODS[1].1, OPENS), "other → client:80 is open");
    // client → web: client's egress (open) and web's ingress (rule); other → web: other's
    // egress (open) and web's ingress (denied); other → client: both sides open.
    let done = || store.query(&FlowQuery::default()).len() >= 5;
    let arrived = wait_until(Duration::from_secs(5), done);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let records = store.query(&FlowQuery::default());
    assert!(arrived, "expected 5 records, got {records:#?}");

    let ingress = |r: &&FlowRecord| r.direction.as_deref() == Some("ingress") && r.tier == "NetworkPolicy";
    let web_in: Vec<&FlowRecord> = records.iter().filter(ingress).collect();
    let allowed = web_in.iter().find(|r| r.src_pod.as_deref() == Some("x/client")).expect("client → web");
    assert_eq!((allowed.verdict.as_str(), allowed.dst_pod.as_deref()), ("allowed", Some("x/web")));
    assert_eq!((allowed.policy.as_deref(), allowed.rule, allowed.dport), (Some("x/web"), Some(1), Some(80)));
    let denied = web_in.iter().find(|r| r.src_pod.as_deref() == Some("x/other")).expect("other → web");
    assert_eq!((denied.verdict.as_str(), denied.reason.as_str()), ("denied", "default deny"));
    assert_eq!((denied.policies.as_slice(), denied.policy.as_deref()), (&["x/web".to_string()][..], None));
    let open = |src: &str, dst: &str, dir: &str| {
        records.iter().any(|r| {
            r.tier == "none"
                && r.reason == "no policy"
                && r.direction.as_deref() == Some(dir)
                && find(std::slice::from_ref(r), src, dst).is_some()
        })
    };
    assert!(open("x/client", "x/web", "egress") && open("x/other", "x/web", "egress"), "{records:#?}");
    assert!(open("x/other", "x/client", "egress") && open("x/other", "x/client", "ingress"), "{records:#?}");
    // Replies and later packets are not logged: only SYNs (a denied one may be retransmitted).
    assert!(records.len() <= 7, "{records:#?}");
    let file = std::fs::read_to_string(state.path().join("flows.jsonl")).unwrap();
    assert_eq!(file.lines().count(), records.len());
}
