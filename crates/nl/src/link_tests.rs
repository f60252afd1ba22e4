use netlink_packet_route::link::{InfoKind, LinkHeader};

use super::*;

#[test]
fn ifname_rules_match_the_kernel() {
    for ok in ["eth0", "a", "veth1234567890a", "tw.1", "x-y_z"] {
        assert!(check_ifname(ok).is_ok(), "{ok}");
    }
    for bad in ["", ".", "..", "veth1234567890ab", "a/b", "a:b", "a b", "a\tb"] {
        let e = check_ifname(bad).unwrap_err();
        assert!(e.to_string().starts_with("invalid interface name"), "{bad}: {e}");
    }
}

#[test]
fn flag_change_touches_only_its_flag() {
    let m = build_flag_change(5, LinkFlags::Up, true);
    assert_eq!((m.header.index, m.header.flags, m.header.change_mask), (5, LinkFlags::Up, LinkFlags::Up));
    let m = build_flag_change(5, LinkFlags::Promisc, false);
    assert_eq!((m.header.flags, m.header.change_mask), (LinkFlags::empty(), LinkFlags::Promisc));
}

#[test]
fn bridge_port_message_carries_only_requested_options() {
    assert!(build_bridge_port(3, None, None, None).is_none());
    let m = build_bridge_port(3, Some(true), None, Some(false)).unwrap();
    assert_eq!(m.header.index, 3);
    let LinkAttribute::LinkInfo(info) = &m.attributes[0] else { panic!("{m:?}") };
    assert_eq!(info[0], LinkInfo::PortKind(InfoPortKind::Bridge));
    assert_eq!(
        info[1],
        LinkInfo::PortData(InfoPortData::BridgePort(vec![
            InfoBridgePort::HairpinMode(true),
            InfoBridgePort::Learning(false),
        ]))
    );
    let port = bridge_port_from_msg(&m).unwrap();
    assert_eq!(port, BridgePort { hairpin: true, isolated: false, learning: false });
}

#[test]
fn link_is_read_from_header_and_attributes() {
    let mut m = LinkMessage::default();
    m.header = LinkHeader::default();
    m.header.index = 9;
    m.header.flags = LinkFlags::Up | LinkFlags::Allmulti;
    m.attributes = vec![
        LinkAttribute::IfName("eth0".into()),
        LinkAttribute::Address(vec![2, 0, 0, 0, 0, 1]),
        LinkAttribute::Mtu(1450),
        LinkAttribute::Controller(0),
        LinkAttribute::Link(4),
        LinkAttribute::LinkNetNsId(0),
        LinkAttribute::TxQueueLen(1000),
        LinkAttribute::IfAlias("net/c1/eth0".into()),
        LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
    ];
    let l = Link::from_msg(&m);
    assert_eq!(
        l,
        Link {
            index: 9,
            name: "eth0".into(),
            kind: Some("veth".into()),
            mac: Some([2, 0, 0, 0, 0, 1]),
            mtu: 1450,
            up: true,
            master: None,
            link: Some(4),
            link_netnsid: Some(0),
            promisc: false,
            txqlen: 1000,
            allmulti: true,
            alias: Some("net/c1/eth0".into()),
        }
    );
}
