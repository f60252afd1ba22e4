//! Kernel tier (root): every golden ruleset is accepted by `nft -c -f` and means, applied
//! over netlink, what its text says; compiled rulesets apply and replace each other and
//! update by elements in a throw-away namespace
//! (`twt-pol-...`, removed also on failure), and the cost of large rulesets is printed (no
//! timed assertions: run with `--nocapture` to see the numbers).

mod common;

use common::golden_cases as golden;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use testkit::{TestNs, require_privileges};
use twill_policy::{
    Direction, LabelSelector, Namespace, NetworkPolicy, Node, Peer, Pod, PodRef, PolicyPort, PortSpec,
    Protocol, Rule, Ruleset, World, apply_batch, compile, compile_logged, delete_batch, update_batch,
};

/// Applies a batch inside `ns` over netlink, as twilld does.
fn apply_in(ns: &TestNs, batch: &fw::nft::Batch) -> Result<(), fw::nft::Error> {
    fw::nft::Conn::in_netns(ns.ns())?.apply(batch)
}

fn n1_pods(w: &World) -> Vec<PodRef> {
    w.pods().filter(|p| p.node == "n1").map(|p| p.key()).collect()
}

#[test]
fn nft_accepts_every_golden_ruleset() {
    require_privileges();
    let ns = TestNs::new("pol");
    for (name, _) in golden::CASES {
        let path = golden::golden_dir().join(format!("{name}.nft"));
        let out = ns.exec(&["nft", "-c", "-f", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "nft -c -f {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_golden_ruleset_over_netlink_equals_its_text() {
    require_privileges();
    for (name, yaml) in golden::CASES {
        let (by_netlink, by_nft) = (TestNs::new("poln"), TestNs::new("polt"));
        let w = common::world_with(yaml);
        let rs = compile_logged(&w, &n1_pods(&w), golden::mode(name)).0;
        apply_in(&by_netlink, &apply_batch(&rs)).unwrap_or_else(|e| panic!("{name}: apply: {e}"));
        by_nft.nft(&rs.text());
        assert_eq!(
            by_netlink.nft_table("inet", "twill_policy"),
            by_nft.nft_table("inet", "twill_policy"),
            "{name}: netlink\n{}\ntext\n{}",
            by_netlink.nft_text("inet", "twill_policy"),
            by_nft.nft_text("inet", "twill_policy")
        );
    }
}

#[test]
fn rulesets_replace_each_other_and_update_by_elements() {
    require_privileges();
    let ns = TestNs::new("pol");
    // Replacing must work on a node without the table and on one with any other ruleset.
    for (name, yaml) in golden::CASES.iter().chain(golden::CASES.iter().rev()) {
        let w = common::world_with(yaml);
        let rs = compile(&w, &n1_pods(&w));
        apply_in(&ns, &apply_batch(&rs)).unwrap_or_else(|e| panic!("apply {name}: {e}"));
        let listed = ns.exec_ok(&["nft", "list", "table", "inet", "twill_policy"]);
        assert!(listed.contains("chain forward_ingress"), "{name}: {listed}");
    }
    // New pods in y join the peers of x/named-in: only elements change. 10.244.1.22 grows
    // the range of y/a and y/b (10.244.1.20/31): an element is replaced in one batch.
    let (_, yaml) = golden::CASES.iter().find(|(n, _)| *n == "named-ports").unwrap();
    let mut w = common::world_with(yaml);
    let old = compile(&w, &n1_pods(&w));
    apply_in(&ns, &apply_batch(&old)).unwrap();
    for (name, v4, v6) in [("d", "10.244.1.22", "fd00:1::22"), ("e", "10.244.3.40", "fd00:3::40")] {
        w.add_pod(Pod {
            namespace: "y".into(),
            name: name.into(),
            ips: vec![v4.parse().unwrap(), v6.parse().unwrap()],
            node: "n3".into(),
            ..Pod::default()
        });
    }
    let new = compile(&w, &n1_pods(&w));
    let batch = update_batch(&old, &new).expect("only elements changed");
    assert!(batch.text().contains("10.244.3.40"), "{}", batch.text());
    apply_in(&ns, &batch).unwrap_or_else(|e| panic!("update: {e}\n{}", batch.text()));
    let ports4 =
        new.sets.iter().find(|s| s.name.starts_with("ingress_x.named-in") && s.name.ends_with("_ports4"));
    let ports4 = ports4.expect("x/named-in's group").name.clone();
    let set = ns.exec_ok(&["nft", "list", "set", "inet", "twill_policy", &ports4]);
    assert!(set.contains("10.244.3.40") && set.contains("10.244.1.20-10.244.1.22"), "{set}");
    // And back.
    let back = update_batch(&new, &old).unwrap();
    apply_in(&ns, &back).unwrap_or_else(|e| panic!("update back: {e}\n{}", back.text()));
    let set = ns.exec_ok(&["nft", "list", "set", "inet", "twill_policy", &ports4]);
    assert!(!set.contains("10.244.3.40") && set.contains("10.244.1.20/31"), "{set}");
    // A pod joining a group: one dispatch map element (with its comment), both ways.
    let mut more = w.clone();
    more.add_pod(Pod {
        namespace: "x".into(),
        name: "n".into(),
        ips: vec!["10.244.1.99".parse().unwrap()],
        ports: common::e2e_ports(),
        node: "n1".into(),
        ..Pod::default()
    });
    let grown = compile(&more, &n1_pods(&more));
    let batch = update_batch(&old, &grown).expect("same groups");
    apply_in(&ns, &batch).unwrap_or_else(|e| panic!("join: {e}\n{}", batch.text()));
    let map = ns.exec_ok(&["nft", "list", "map", "inet", "twill_policy", "ingress_dispatch4"]);
    assert!(map.contains("10.244.1.99 comment \"x/n\""), "{map}");
    let batch = update_batch(&grown, &old).unwrap();
    apply_in(&ns, &batch).unwrap_or_else(|e| panic!("leave: {e}\n{}", batch.text()));
    // A new combination of policies is a new group: a full apply.
    let (_, deny) = golden::CASES.iter().find(|(n, _)| *n == "deny-all-ingress").unwrap();
    let other = compile(&common::world_with(deny), &n1_pods(&w));
    assert!(update_batch(&old, &other).is_none());
    apply_in(&ns, &delete_batch()).unwrap();
    let out = ns.exec(&["nft", "list", "table", "inet", "twill_policy"]);
    assert!(!out.status.success(), "the table is gone");
}

/// 10,000 remote pods in 100 namespaces (addresses far apart, so no interval merges) and 20
/// pods on the node.
fn big_world() -> World {
    let mut w = World::new();
    w.add_node(Node { name: "n1".into(), ..Node::default() });
    w.add_namespace(Namespace::new("app", Default::default()));
    for i in 0..20u8 {
        w.add_pod(Pod {
            namespace: "app".into(),
            name: format!("p{i}"),
            labels: [("pod".to_string(), format!("p{i}"))].into(),
            ips: vec![IpAddr::V4(Ipv4Addr::new(10, 200, 0, i + 1))],
            node: "n1".into(),
            ..Pod::default()
        });
    }
    for k in 0..100u8 {
        w.add_namespace(Namespace::new(&format!("ns{k}"), Default::default()));
        for j in 0..100u8 {
            w.add_pod(Pod {
                namespace: format!("ns{k}"),
                name: format!("c{j}"),
                labels: [("app".to_string(), format!("c{j}"))].into(),
                ips: vec![IpAddr::V4(Ipv4Addr::new(10, k, j, 1))],
                node: "n2".into(),
                ..Pod::default()
            });
        }
    }
    w
}

fn ingress_policy(name: String, pod: String, peer: Peer, ports: Vec<PolicyPort>) -> NetworkPolicy {
    NetworkPolicy {
        namespace: "app".into(),
        name,
        pod_selector: LabelSelector::labels([("pod", pod.as_str())]),
        policy_types: vec![Direction::Ingress],
        ingress: vec![Rule { peers: vec![peer], ports }],
        egress: vec![],
    }
}

fn measure(ns: &TestNs, label: &str, w: &World) -> Ruleset {
    let locals: Vec<PodRef> = w.pods().filter(|p| p.node == "n1").map(|p| p.key()).collect();
    let t = Instant::now();
    let rs = compile(w, &locals);
    let compiled = t.elapsed();
    let batch = apply_batch(&rs);
    let t = Instant::now();
    apply_in(ns, &batch).unwrap_or_else(|e| panic!("{label}: apply: {e}"));
    let first = t.elapsed();
    let t = Instant::now();
    apply_in(ns, &batch).unwrap_or_else(|e| panic!("{label}: re-apply: {e}"));
    let replace = t.elapsed();
    println!(
        "{label}: {} sets, {} chains, {} elements, {} KiB of nft text; compile {compiled:?}, \
         first apply {first:?}, atomic replace {replace:?}",
        rs.sets.len(),
        rs.chains.len(),
        rs.element_count(),
        batch.text().len() / 1024
    );
    rs
}

#[test]
fn ten_thousand_policies_and_peers() {
    require_privileges();
    let ns = TestNs::new("pol");
    // 10,000 policies, each allowing one remote pod to one local pod on one port.
    let mut w = big_world();
    for i in 0..10_000u32 {
        let peer = Peer::Pods {
            namespaces: Some(LabelSelector::labels([(
                "kubernetes.io/metadata.name",
                format!("ns{}", i % 100).as_str(),
            )])),
            pods: Some(LabelSelector::labels([("app", format!("c{}", (i / 100) % 100).as_str())])),
        };
        let port =
            PolicyPort { protocol: Protocol::Tcp, port: Some(PortSpec::Number(8000 + (i % 1000) as u16)) };
        w.add_policy(ingress_policy(format!("np{i}"), format!("p{}", i % 20), peer, vec![port]));
    }
    let old = measure(&ns, "10,000 policies × 1 peer", &w);
    // One more remote pod matching policy np0: an element update.
    w.add_pod(Pod {
        namespace: "ns0".into(),
        name: "late".into(),
        labels: [("app".to_string(), "c0".to_string())].into(),
        ips: vec!["10.250.0.1".parse().unwrap()],
        node: "n2".into(),
        ..Pod::default()
    });
    let locals: Vec<PodRef> = w.pods().filter(|p| p.node == "n1").map(|p| p.key()).collect();
    let new = compile(&w, &locals);
    let update = update_batch(&old, &new).expect("a new peer only adds elements");
    let t = Instant::now();
    apply_in(&ns, &update).unwrap_or_else(|e| panic!("update: {e}"));
    println!(
        "10,000 policies: one new peer pod → {} statement(s), applied in {:?}",
        update.text().lines().count(),
        t.elapsed()
    );

    // One policy whose peers are all 10,000 remote pods.
    let mut w = big_world();
    let everyone = Peer::Pods { namespaces: Some(LabelSelector::everything()), pods: None };
    let mut p = ingress_policy("from-everyone".into(), "p0".into(), everyone, vec![]);
    p.pod_selector = LabelSelector::everything();
    w.add_policy(p);
    measure(&ns, "1 policy × 10,020 peers", &w);
}

/// The admin tiers' worst case: sets keyed by local pod × peer, so an AdminNetworkPolicy
/// selecting all 20 local pods with all 10,000 scattered remote pods as peers has 200,000
/// elements; the same with ports, and the baseline. Measured, not asserted.
#[test]
fn admin_tiers_at_scale() {
    require_privileges();
    let ns = TestNs::new("pol");
    let mut w = big_world();
    let yaml = "apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: everyone}
spec:
  priority: 1
  subject: {namespaces: {}}
  ingress:
  - {action: Pass, from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: ns0}}}]}
  - {action: Deny, from: [{namespaces: {}}], ports: [{portNumber: {port: 22}}, {portRange: {start: 8000, end: 8999}}]}
";
    twill_policy::parse_yaml(yaml).unwrap().into_iter().for_each(|o| w.add_object(o));
    measure(&ns, "1 AdminNetworkPolicy × 20 local subjects × 10,020 peers", &w);
    let yaml = "apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  ingress:
  - {action: Deny, from: [{namespaces: {}}]}
";
    twill_policy::parse_yaml(yaml).unwrap().into_iter().for_each(|o| w.add_object(o));
    measure(&ns, "... and a baseline denying all 10,020 peers", &w);
}
