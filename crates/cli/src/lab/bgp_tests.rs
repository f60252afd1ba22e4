//! Golden files of the lab's router and outside-host BIRD configurations
//! (`testdata/*.conf`; `TWILL_BLESS=1 cargo test -p twill --bin twill lab::bgp` rewrites
//! them). twill-agent's `tests/bird_config.rs` has BIRD parse each of them.

use std::path::PathBuf;

use super::*;
use crate::lab::state::{Backend, DatastoreKind};

fn options(racks: u8, outside_bgp: bool, ipv6: bool) -> LabOptions {
    LabOptions { racks, outside_bgp, ..LabOptions::flat(4, Backend::Bgp, DatastoreKind::File, ipv6) }
}

type Case = (&'static str, fn() -> BirdConfig);
const CASES: [Case; 4] = [
    ("router-racks2", || plan_router(&options(2, false, false))),
    ("router-racks2-outside-ipv6", || plan_router(&options(2, true, true))),
    ("outside-flat-ipv6", || plan_outside(&options(0, true, true))),
    ("outside-racks2", || plan_outside(&options(2, true, false))),
];

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/lab/testdata")
}

#[test]
fn configurations_match_golden_files() {
    let cases = CASES.iter().map(|(name, case)| (name.to_string(), case().render()));
    testkit::golden::assert_golden_files(&golden_dir(), "conf", cases);
}

#[test]
fn rack_peers_select_their_rack_and_carry_its_password() {
    let peers = plan_bgp_peers(&options(2, true, true));
    let names: Vec<&str> = peers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["rack1-router", "rack1-router6", "rack2-router", "rack2-router6"]);
    let p = peers[2].validate().unwrap();
    assert_eq!((p.peer_ip.to_string(), p.asn), ("10.100.2.1".to_string(), ROUTER_AS));
    assert_eq!(p.password.as_deref(), Some("twill-lab-rack2"));
    let rack2: policy::Labels = [(RACK_LABEL.to_string(), "rack2".to_string())].into();
    assert!(p.selects(&rack2));
    assert!(!peers[0].validate().unwrap().selects(&rack2));
    // The router's rack sessions use the same password.
    let router = plan_router(&options(2, false, false));
    assert_eq!(router.sessions[1].password.as_deref(), Some("twill-lab-rack2"));
}

#[test]
fn a_flat_lab_peers_with_the_outside_only_when_asked() {
    assert!(plan_bgp_peers(&options(0, false, false)).is_empty());
    let peers = plan_bgp_peers(&options(0, true, false));
    assert_eq!(peers.len(), 1);
    let p = peers[0].validate().unwrap();
    assert_eq!(
        (p.peer_ip.to_string(), p.asn, p.node_selector.is_none()),
        ("10.100.0.254".into(), OUTSIDE_AS, true)
    );
    // With racks the outside host peers with the router, not the nodes.
    assert!(plan_bgp_peers(&options(2, true, false)).iter().all(|p| p.name.starts_with("rack")));
}
