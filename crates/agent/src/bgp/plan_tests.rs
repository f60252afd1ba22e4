//! Golden files of the node planner: `testdata/NAME.conf` is the configuration rendered for
//! each case. Regenerate with `TWILL_BLESS=1 cargo test -p twill-agent --lib bgp::plan`;
//! review the diff. `tests/bird_config.rs` has BIRD itself parse every file.

use std::path::PathBuf;

use policy::LabelSelector;

use super::*;

pub(crate) fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/bgp/testdata")
}

fn node(n: u8, rack: u8, v6: bool) -> BgpNode {
    BgpNode {
        name: format!("node-{n}"),
        ip: format!("10.100.{rack}.{}", 10 + n).parse().unwrap(),
        ip6: v6.then(|| format!("fd00:100:{rack}::{}", 10 + n).parse().unwrap()),
        asn: 64512,
        route_reflector: false,
        subnets: [Some(format!("10.244.{n}.0/24")), v6.then(|| format!("fd00:10:244:{n}::/64"))]
            .into_iter()
            .flatten()
            .map(|s| s.parse().unwrap())
            .collect(),
    }
}

fn bgp_peer(
    name: &str,
    ip: &str,
    asn: u32,
    selector: Option<(&str, &str)>,
    password: Option<&str>,
) -> BgpPeer {
    BgpPeer {
        name: name.into(),
        peer_ip: ip.parse().unwrap(),
        asn,
        node_selector: selector.map(|(k, v)| LabelSelector::labels([(k, v)])),
        password: password.map(str::to_string),
    }
}

fn settings() -> SessionSettings {
    SessionSettings { mesh: true, hold_seconds: 9, graceful_restart_seconds: 120, scan_seconds: 2 }
}

fn inputs(local: BgpNode, peers: Vec<BgpNode>) -> NodeInputs {
    NodeInputs {
        labels: Labels::new(),
        underlay_iface: "eth0".into(),
        underlay_nets: vec!["10.100.0.0/24".parse().unwrap(), "fd00:100:0::/64".parse().unwrap()],
        local,
        peers,
        bgp_peers: Vec::new(),
        vxlan_subnets: Vec::new(),
        settings: settings(),
    }
}

fn mesh_dual_stack() -> NodeInputs {
    let mut i = inputs(node(1, 0, true), vec![node(3, 0, false), node(2, 0, true)]);
    i.labels.insert("twill.dev/rack".into(), "rack1".into());
    i.bgp_peers = vec![
        bgp_peer("outside", "10.100.0.254", 65100, None, None),
        bgp_peer("outside6", "fd00:100::254", 65100, None, None),
        bgp_peer("tor-rack2", "10.100.2.1", 65000, Some(("twill.dev/rack", "rack2")), None),
        bgp_peer("node-2-again", "10.100.0.12", 64512, None, None),
    ];
    i
}

fn route_reflector() -> NodeInputs {
    let mut local = node(1, 0, false);
    local.route_reflector = true;
    let mut rr2 = node(2, 0, false);
    rr2.route_reflector = true;
    let mut other_as = node(4, 0, false);
    other_as.asn = 65001;
    inputs(local, vec![rr2, node(3, 0, false), other_as])
}

fn reflector_client() -> NodeInputs {
    let mut rr1 = node(1, 0, false);
    rr1.route_reflector = true;
    let mut rr2 = node(2, 0, false);
    rr2.route_reflector = true;
    inputs(node(3, 0, false), vec![rr1, node(4, 0, false), rr2])
}

fn racks_cross_subnet() -> NodeInputs {
    let mut i = inputs(node(1, 1, false), vec![node(2, 1, false), node(3, 2, false), node(4, 2, false)]);
    i.underlay_nets = vec!["10.100.1.0/24".parse().unwrap()];
    i.labels.insert("twill.dev/rack".into(), "rack1".into());
    i.bgp_peers = vec![
        bgp_peer("tor-rack1", "10.100.1.1", 65000, Some(("twill.dev/rack", "rack1")), Some("s3cret")),
        bgp_peer("tor-rack2", "10.100.2.1", 65000, Some(("twill.dev/rack", "rack2")), Some("other")),
    ];
    i.vxlan_subnets = vec!["10.244.4.0/24".parse().unwrap(), "10.244.3.0/24".parse().unwrap()];
    i
}

/// Calico's AS-per-rack design: no mesh, one AS per node, the top-of-rack router only.
fn as_per_rack_no_mesh() -> NodeInputs {
    let mut local = node(1, 1, false);
    local.asn = 65011;
    let mut i = inputs(local, vec![node(2, 1, false)]);
    i.settings.mesh = false;
    i.underlay_nets = vec!["10.100.1.0/24".parse().unwrap()];
    i.bgp_peers = vec![bgp_peer("tor", "10.100.1.1", 65000, None, None)];
    i
}

type Case = (&'static str, fn() -> NodeInputs);
pub(crate) const CASES: [Case; 5] = [
    ("mesh-dual-stack", mesh_dual_stack),
    ("route-reflector", route_reflector),
    ("reflector-client", reflector_client),
    ("racks-cross-subnet", racks_cross_subnet),
    ("as-per-rack-no-mesh", as_per_rack_no_mesh),
];

#[test]
fn rendered_configurations_match_golden_files() {
    let cases = CASES.iter().map(|(name, case)| (name.to_string(), plan_node(&case()).config.render()));
    testkit::golden::assert_golden_files(&golden_dir(), "conf", cases);
}

#[test]
fn every_golden_file_is_a_case() {
    testkit::golden::assert_no_stale_golden_files(&golden_dir(), "conf", CASES.iter().map(|(n, _)| *n));
}

fn neighbours(p: &NodePlan) -> Vec<(String, String, bool)> {
    p.config
        .sessions
        .iter()
        .map(|s| match &s.neighbor {
            Neighbor::Addr { ip, .. } => (s.description.clone(), ip.to_string(), s.rr_client),
            Neighbor::Range { net, .. } => (s.description.clone(), net.to_string(), s.rr_client),
        })
        .collect()
}

#[test]
fn full_mesh_one_session_per_family_and_selected_peers() {
    let p = plan_node(&mesh_dual_stack());
    let n: Vec<(String, String)> = neighbours(&p).into_iter().map(|(d, ip, _)| (d, ip)).collect();
    let want = [
        ("node node-2", "10.100.0.12"),
        ("node node-2", "fd00:100::12"),
        ("node node-3", "10.100.0.13"),
        ("BGPPeer outside", "10.100.0.254"),
        ("BGPPeer outside6", "fd00:100::254"),
    ];
    assert_eq!(n, want.map(|(a, b)| (a.to_string(), b.to_string())));
    assert_eq!(p.skipped.len(), 1, "{:?}", p.skipped);
    assert!(
        p.skipped[0].starts_with("BGPPeer node-2-again (10.100.0.12): its peerIP is a node"),
        "{:?}",
        p.skipped
    );
}

#[test]
fn reflectors_peer_with_everyone_and_clients_only_with_reflectors() {
    let rr = neighbours(&plan_node(&route_reflector()));
    assert_eq!(
        rr,
        [
            ("route reflector node-2".to_string(), "10.100.0.12".to_string(), false),
            ("node node-3".to_string(), "10.100.0.13".to_string(), true),
            // Another AS: an eBGP session, never a reflector client.
            ("node node-4".to_string(), "10.100.0.14".to_string(), false),
        ]
    );
    let client = neighbours(&plan_node(&reflector_client()));
    let names: Vec<&str> = client.iter().map(|(d, _, _)| d.as_str()).collect();
    assert_eq!(names, ["route reflector node-1", "route reflector node-2"]);
}

#[test]
fn no_mesh_leaves_only_bgp_peers_and_hops_follow_the_underlay() {
    let p = plan_node(&as_per_rack_no_mesh());
    assert_eq!(neighbours(&p), [("BGPPeer tor".to_string(), "10.100.1.1".to_string(), false)]);
    let racks = plan_node(&racks_cross_subnet());
    let hops: Vec<(String, Hop)> =
        racks.config.sessions.iter().map(|s| (s.description.clone(), s.hop)).collect();
    assert_eq!(
        hops,
        [
            ("node node-2".to_string(), Hop::Direct),
            ("node node-3".to_string(), Hop::Multihop),
            ("node node-4".to_string(), Hop::Multihop),
            ("BGPPeer tor-rack1".to_string(), Hop::Direct),
        ]
    );
}

#[test]
fn router_ids_are_32_bits_of_the_node_address() {
    assert_eq!(router_id("10.100.0.11".parse().unwrap()), Ipv4Addr::new(10, 100, 0, 11));
    assert_eq!(router_id("fd00:100::a0b:c0d".parse().unwrap()), Ipv4Addr::new(10, 11, 12, 13));
}
