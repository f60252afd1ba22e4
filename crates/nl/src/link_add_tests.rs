use netlink_packet_route::link::{InfoData, InfoMacVlan, InfoVeth, InfoVxlan, MacVlanMode};

use super::*;
use crate::link::info_data;

fn has(m: &LinkMessage, a: &LinkAttribute) -> bool {
    m.attributes.contains(a)
}

#[test]
fn veth_peer_gets_name_mtu_mac_and_netns_fd() {
    let ns = NetNs::current().unwrap();
    let m =
        build_veth("v0", "eth0", Some(&ns), Some(1400), Some([2, 0, 0, 0, 0, 1]), Some([2, 0, 0, 0, 0, 2]));
    assert!(has(&m, &LinkAttribute::IfName("v0".into())));
    assert!(has(&m, &LinkAttribute::Mtu(1400)));
    assert!(has(&m, &LinkAttribute::Address(vec![2, 0, 0, 0, 0, 1])));
    let Some(InfoData::Veth(InfoVeth::Peer(peer))) = info_data(&m) else { panic!("{m:?}") };
    assert!(has(peer, &LinkAttribute::IfName("eth0".into())));
    assert!(has(peer, &LinkAttribute::Mtu(1400)));
    assert!(has(peer, &LinkAttribute::Address(vec![2, 0, 0, 0, 0, 2])));
    assert!(has(peer, &LinkAttribute::NetNsFd(ns.as_fd().as_raw_fd())));
    // The host side itself stays here.
    assert!(!m.attributes.iter().any(|a| matches!(a, LinkAttribute::NetNsFd(_))));
}

#[test]
fn veth_without_options_has_only_names() {
    let m = build_veth("v0", "v1", None, None, None, None);
    assert_eq!(m.attributes.len(), 2);
    let Some(InfoData::Veth(InfoVeth::Peer(peer))) = info_data(&m) else { panic!("{m:?}") };
    assert_eq!(peer.attributes, vec![LinkAttribute::IfName("v1".into())]);
}

#[test]
fn macvlan_names_parent_mode_and_target_netns() {
    let ns = NetNs::current().unwrap();
    let m = build_macvlan("mv0", 7, MacvlanMode::Passthru, None, None, Some(&ns));
    assert!(has(&m, &LinkAttribute::Link(7)));
    assert!(has(&m, &LinkAttribute::NetNsFd(ns.as_fd().as_raw_fd())));
    assert_eq!(info_data(&m), Some(&InfoData::MacVlan(vec![InfoMacVlan::Mode(MacVlanMode::Passthrough)])));
}

#[test]
fn macvlan_modes_parse_like_iproute2() {
    for (s, m) in [
        ("private", MacvlanMode::Private),
        ("vepa", MacvlanMode::Vepa),
        ("bridge", MacvlanMode::Bridge),
        ("passthru", MacvlanMode::Passthru),
        ("source", MacvlanMode::Source),
    ] {
        assert_eq!(s.parse::<MacvlanMode>().unwrap(), m);
    }
    let e = "bridged".parse::<MacvlanMode>().unwrap_err();
    assert!(e.to_string().starts_with("invalid macvlan mode \"bridged\""), "{e}");
}

#[test]
fn vxlan_options() {
    let conf = VxlanConf {
        name: "vx0".into(),
        vni: 42,
        local: Some("fd00::1".parse().unwrap()),
        parent: Some(3),
        port: 4789,
        learning: false,
        mtu: Some(1450),
    };
    let m = build_vxlan(&conf);
    assert!(has(&m, &LinkAttribute::Mtu(1450)));
    assert_eq!(
        info_data(&m),
        Some(&InfoData::Vxlan(vec![
            InfoVxlan::Id(42),
            InfoVxlan::Local6("fd00::1".parse().unwrap()),
            InfoVxlan::Link(3),
            InfoVxlan::Port(4789),
            InfoVxlan::Learning(false),
        ]))
    );
}
