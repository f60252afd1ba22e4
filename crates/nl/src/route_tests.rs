use super::*;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn add_defaults_follow_iproute2() {
    let r = Route { dst: net("10.0.0.0/8"), oif: Some(2), ..Route::default() };
    let m = build_route(&r, false);
    assert_eq!(m.header.table, 254);
    assert_eq!(u8::from(m.header.protocol), PROTO_BOOT);
    assert_eq!(u8::from(m.header.scope), SCOPE_LINK, "no gateway → link scope");
    assert_eq!(u8::from(m.header.kind), KIND_UNICAST);
    assert!(m.attributes.contains(&RouteAttribute::Table(254)));
    assert!(m.attributes.contains(&RouteAttribute::Oif(2)));
    let via = Route { gw: Some("10.0.0.1".parse().unwrap()), ..r };
    assert_eq!(u8::from(build_route(&via, false).header.scope), 0);
}

#[test]
fn delete_leaves_wildcards() {
    let m = build_route(&Route { dst: net("10.0.0.0/8"), ..Route::default() }, true);
    assert_eq!(u8::from(m.header.protocol), 0);
    assert_eq!(u8::from(m.header.scope), SCOPE_NOWHERE);
    assert_eq!(u8::from(m.header.kind), 0);
}

#[test]
fn big_table_ids_go_in_the_attribute_only() {
    let m = build_route(&Route { dst: net("0.0.0.0/0"), table: Some(1000), ..Route::default() }, false);
    assert_eq!(m.header.table, 0);
    assert!(m.attributes.contains(&RouteAttribute::Table(1000)));
    // A default route has no RTA_DST.
    assert!(!m.attributes.iter().any(|a| matches!(a, RouteAttribute::Destination(_))));
}

#[test]
fn destination_host_bits_are_dropped_and_round_trip() {
    let r = Route {
        dst: net("10.1.2.3/24"),
        gw: Some("10.1.2.1".parse().unwrap()),
        src: Some("10.1.2.3".parse().unwrap()),
        oif: Some(4),
        metric: Some(5),
        mtu: Some(1400),
        advmss: Some(1360),
        onlink: true,
        table: Some(7),
        ..Route::default()
    };
    let m = build_route(&r, false);
    let back = parse_route(&m).unwrap();
    assert_eq!(back.dst, net("10.1.2.0/24"));
    assert_eq!((back.gw, back.src, back.oif, back.metric), (r.gw, r.src, r.oif, r.metric));
    assert_eq!((back.mtu, back.advmss, back.onlink, back.table), (Some(1400), Some(1360), true, Some(7)));
    assert_eq!(back.protocol, Some(PROTO_BOOT));
}

#[test]
fn ipv6_routes_keep_universe_scope() {
    let r = Route { dst: net("fd00::/64"), oif: Some(1), ..Route::default() };
    assert_eq!(u8::from(build_route(&r, false).header.scope), 0);
}

#[test]
fn mixed_families_are_rejected() {
    let r = Route { dst: net("10.0.0.0/8"), gw: Some("fd00::1".parse().unwrap()), ..Route::default() };
    let e = check_families(&r).unwrap_err();
    assert_eq!(e.to_string(), "invalid route gateway \"fd00::1\": family differs from destination");
    let r = Route { dst: net("fd00::/8"), src: Some("10.0.0.1".parse().unwrap()), ..Route::default() };
    assert!(check_families(&r).is_err());
}
