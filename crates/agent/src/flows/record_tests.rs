use super::*;
use policy::{FlowLogs, Namespace, Pod, compile_logged, parse_yaml};

const POLICIES: &str = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: x}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: db}}}]
    ports: [{port: 5432}]
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{port: 80}]
";

fn pod(name: &str, app: &str, ip: &str) -> Pod {
    Pod {
        namespace: "x".into(),
        name: name.into(),
        labels: [("app".to_string(), app.to_string())].into(),
        ips: vec![ip.parse().unwrap()],
        node: "n1".into(),
        ..Pod::default()
    }
}

fn view(mode: FlowLogs) -> FlowView {
    let mut world = World::new();
    world.add_namespace(Namespace::new("x", Default::default()));
    world.add_pod(pod("web", "web", "10.0.0.2"));
    world.add_pod(pod("client", "client", "10.0.0.3"));
    world.add_pod(pod("other", "other", "10.0.0.4"));
    for object in parse_yaml(POLICIES).unwrap() {
        world.add_object(object);
    }
    let local = world.pods_on("n1");
    let (_, sites) = compile_logged(&world, &local, mode);
    FlowView::new("n1", world, sites)
}

/// An IPv4 TCP SYN's first 24 bytes.
fn tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 6, 0, 0];
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p
}

fn packet(prefix: &str, payload: Vec<u8>) -> Packet {
    Packet {
        prefix: prefix.into(),
        hw_protocol: 0x0800,
        hook: 2,
        timestamp: None,
        indev: None,
        outdev: None,
        payload,
    }
}

fn prefix_of(view: &FlowView, verdict: FlowVerdict) -> String {
    view.sites
        .sites
        .iter()
        .find(|(_, s)| s.verdict == verdict && s.tier == "NetworkPolicy")
        .unwrap()
        .0
        .clone()
}

#[test]
fn allowed_connections_name_their_rule() {
    let v = view(FlowLogs::All);
    let p = packet(&prefix_of(&v, FlowVerdict::Allowed), tcp([10, 0, 0, 3], [10, 0, 0, 2], 40000, 80));
    let r = build_record(&v, &p, 7, 1.5).unwrap();
    assert_eq!(
        (r.seq, r.time, r.verdict.as_str(), r.direction.as_deref()),
        (7, 1.5, "allowed", Some("ingress"))
    );
    assert_eq!((r.policy.as_deref(), r.rule, r.reason.as_str()), (Some("x/web"), Some(1), "rule"));
    assert_eq!((r.src_pod.as_deref(), r.dst_pod.as_deref()), (Some("x/client"), Some("x/web")));
    assert_eq!((r.proto.as_str(), r.sport, r.dport), ("tcp", Some(40000), Some(80)));
    assert!(r.policies.is_empty() && r.in_namespace("x") && r.involves("x/web") && !r.denied());
}

#[test]
fn denied_connections_name_the_isolating_policies() {
    let v = view(FlowLogs::Denied);
    let p = packet(&prefix_of(&v, FlowVerdict::Denied), tcp([10, 0, 0, 4], [10, 0, 0, 2], 40000, 80));
    let r = build_record(&v, &p, 0, 2.0).unwrap();
    assert_eq!(
        (r.verdict.as_str(), r.reason.as_str(), r.policies.clone()),
        ("denied", "default deny", vec!["x/web".to_string()])
    );
    assert_eq!((r.policy.clone(), r.rule, r.src_pod.as_deref()), (None, None, Some("x/other")));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["tier"], "NetworkPolicy");
    assert!(json.get("rule").is_none(), "{json}");
}

#[test]
fn a_connection_the_cluster_no_longer_allows_keeps_its_verdict() {
    let v = view(FlowLogs::All);
    // The kernel allowed it by the group's sets; by now nothing matches port 81.
    let p = packet(&prefix_of(&v, FlowVerdict::Allowed), tcp([10, 0, 0, 3], [10, 0, 0, 2], 40000, 81));
    let r = build_record(&v, &p, 0, 0.0).unwrap();
    assert_eq!((r.verdict.as_str(), r.policy.clone()), ("allowed", None));
    assert!(r.reason.starts_with("rule (not resolved"), "{}", r.reason);
}

#[test]
fn spoofed_packets_and_unknown_prefixes() {
    let v = view(FlowLogs::Denied);
    let p = packet("twill denied spoof ip4", tcp([10, 0, 0, 2], [10, 0, 0, 3], 1, 80));
    let r = build_record(&v, &p, 0, 0.0).unwrap();
    assert_eq!(
        (r.verdict.as_str(), r.tier.as_str(), r.reason.as_str()),
        ("denied", "spoofchk", "spoofed ip4")
    );
    // The forged source is x/web's address: not attributed to x/web.
    assert_eq!((r.src_pod, r.dst_pod.as_deref(), r.direction), (None, Some("x/client"), None));
    let unknown = packet("twill allowed ingress 00000000", tcp([10, 0, 0, 2], [10, 0, 0, 3], 1, 80));
    assert_eq!(
        build_record(&v, &unknown, 0, 0.0),
        Err(RecordError::UnknownPrefix("twill allowed ingress 00000000".into()))
    );
    assert!(matches!(
        build_record(&v, &packet("twill denied spoof mac", vec![0x45]), 0, 0.0),
        Err(RecordError::Tuple(_))
    ));
}

#[test]
fn pods_no_policy_selects_are_logged_as_open() {
    let v = view(FlowLogs::All);
    let open = v
        .sites
        .sites
        .iter()
        .find(|(_, s)| s.reason == "no policy" && s.direction == Direction::Egress)
        .unwrap();
    assert_eq!(open.0, "twill allowed egress open");
    let p = packet(open.0, tcp([10, 0, 0, 4], [10, 0, 0, 3], 1, 80));
    let r = build_record(&v, &p, 0, 0.0).unwrap();
    assert_eq!((r.tier.as_str(), r.reason.as_str(), r.policy), ("none", "no policy", None));
}

#[test]
fn admin_tiers_name_their_rule_exactly() {
    let mut v = view(FlowLogs::Denied);
    let anp = "
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: guard}
spec:
  priority: 1
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: client}}}}
  ingress:
  - {name: pass-web, action: Pass, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: web}}}}]}
  - {name: no-other, action: Deny, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: other}}}}]}
";
    let mut world = std::mem::take(&mut v.world);
    parse_yaml(anp).unwrap().into_iter().for_each(|o| world.add_object(o));
    let (_, sites) = compile_logged(&world, &world.pods_on("n1"), FlowLogs::Denied);
    let v = FlowView::new("n1", world, sites);
    let (prefix, _) = v.sites.sites.iter().find(|(_, s)| s.tier == "AdminNetworkPolicy").unwrap();
    let r = build_record(&v, &packet(prefix, tcp([10, 0, 0, 4], [10, 0, 0, 3], 1, 80)), 0, 0.0).unwrap();
    assert_eq!(
        (r.verdict.as_str(), r.tier.as_str(), r.reason.as_str()),
        ("denied", "AdminNetworkPolicy", "rule")
    );
    assert_eq!((r.policy.as_deref(), r.rule, r.policies.len()), (Some("guard"), Some(1), 0));
    // Pass decides nothing: it logs nothing.
    assert_eq!(v.sites.sites.values().filter(|s| s.tier == "AdminNetworkPolicy").count(), 1);
}
