//! Result shapes and conversions beyond the golden files.

use cni_spec::{CniResult, Dns, ErrorCode, Interface, IpConfig, Route, Version};
use serde_json::{Value, json};

fn ip(addr: &str, gw: Option<&str>, interface: Option<usize>) -> IpConfig {
    IpConfig { address: addr.parse().unwrap(), gateway: gw.map(|g| g.parse().unwrap()), interface }
}

fn route(dst: &str, gw: Option<&str>) -> Route {
    Route::new(dst.parse().unwrap(), gw.map(|g| g.parse().unwrap()))
}

fn v4_only() -> CniResult {
    CniResult {
        ips: vec![ip("10.1.2.3/24", Some("10.1.2.1"), Some(0))],
        interfaces: vec![Interface { name: "eth0".into(), ..Interface::default() }],
        ..CniResult::default()
    }
}

#[test]
fn address_keeps_host_bits() {
    let r =
        CniResult::from_json(&json!({"cniVersion": "1.0.0", "ips": [{"address": "10.1.2.3/24"}]})).unwrap();
    assert_eq!(r.ips[0].address.addr().to_string(), "10.1.2.3");
    assert_eq!(r.ips[0].address.prefix_len(), 24);
    assert_eq!(r.to_json(Version::V1_0_0).unwrap()["ips"][0]["address"], "10.1.2.3/24");
}

#[test]
fn empty_result_shapes_follow_go_omitempty() {
    let empty = CniResult::default();
    assert_eq!(empty.to_json(Version::V1_1_0).unwrap(), json!({"cniVersion": "1.1.0"}));
    assert_eq!(empty.to_json(Version::V1_0_0).unwrap(), json!({"cniVersion": "1.0.0"}));
    for v in [Version::V0_3_0, Version::V0_3_1, Version::V0_4_0] {
        assert_eq!(empty.to_json(v).unwrap(), json!({"cniVersion": v.as_str(), "dns": {}}));
    }
}

#[test]
fn legacy_output_always_has_dns() {
    let v = v4_only().to_json(Version::V0_2_0).unwrap();
    assert_eq!(
        v,
        json!({"cniVersion": "0.2.0", "ip4": {"ip": "10.1.2.3/24", "gateway": "10.1.2.1"}, "dns": {}})
    );
}

#[test]
fn ips_version_field_exists_only_before_1_0_0() {
    let r = v4_only();
    for v in Version::ALL.into_iter().filter(|v| !v.is_legacy_result()) {
        let out = r.to_json(v).unwrap();
        let has = out["ips"][0].get("version").is_some();
        assert_eq!(has, v < Version::V1_0_0, "{v}");
        if has {
            assert_eq!(out["ips"][0]["version"], "4");
        }
    }
    let six = CniResult { ips: vec![ip("fd00::2/64", None, None)], ..CniResult::default() };
    assert_eq!(six.to_json(Version::V0_3_1).unwrap()["ips"][0]["version"], "6");
}

#[test]
fn route_and_interface_attributes_only_in_1_1_0() {
    let mut r = v4_only();
    r.interfaces[0].mtu = Some(9000);
    r.interfaces[0].socket_path = Some("/s".into());
    r.interfaces[0].pci_id = Some("0000:01:00.0".into());
    r.routes.push(Route { table: Some(0), scope: Some(253), mtu: Some(1400), ..route("10.0.0.0/8", None) });
    let new = r.to_json(Version::V1_1_0).unwrap();
    assert_eq!(new["routes"][0], json!({"dst": "10.0.0.0/8", "mtu": 1400, "table": 0, "scope": 253}));
    assert_eq!(new["interfaces"][0]["pciID"], "0000:01:00.0");
    let old = r.to_json(Version::V1_0_0).unwrap();
    assert_eq!(old["routes"][0], json!({"dst": "10.0.0.0/8"}));
    assert_eq!(old["interfaces"][0], json!({"name": "eth0"}));
}

#[test]
fn zero_and_empty_values_are_omitted_like_go() {
    let mut r = v4_only();
    r.interfaces[0].mac = Some(String::new());
    r.interfaces[0].mtu = Some(0);
    r.routes.push(Route { priority: Some(0), ..route("0.0.0.0/0", None) });
    r.dns = Dns { domain: Some(String::new()), ..Dns::default() };
    let out = r.to_json(Version::V1_1_0).unwrap();
    assert_eq!(out["interfaces"][0], json!({"name": "eth0"}));
    assert_eq!(out["routes"][0], json!({"dst": "0.0.0.0/0"}));
    assert!(out.get("dns").is_none());
}

#[test]
fn parsing_tolerates_what_go_tolerates() {
    let r = CniResult::from_json(&json!({
        "cniVersion": "0.4.0",
        "ips": [{"version": "4", "address": "10.0.0.2/8", "gateway": ""}],
        "routes": [{"dst": "0.0.0.0/0", "gw": null}],
        "dns": null,
        "interfaces": [{"name": "eth0", "mac": ""}],
        "unknownField": true
    }))
    .unwrap();
    assert_eq!(r.ips[0].gateway, None);
    assert_eq!(r.routes[0].gw, None);
    assert_eq!(r.interfaces[0].mac, None);
    assert!(r.dns.is_empty());
}

#[test]
fn missing_cni_version_means_0_1_0() {
    let r = CniResult::from_json(&json!({"ip4": {"ip": "10.0.0.2/8"}})).unwrap();
    assert_eq!(r.cni_version, Version::V0_1_0);
    assert_eq!(r.ips.len(), 1);
}

#[test]
fn bad_results_are_decode_or_version_errors() {
    let decode = [
        json!([]),
        json!({"cniVersion": 1}),
        json!({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.300/8"}]}),
        json!({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.3"}]}),
        json!({"cniVersion": "1.0.0", "ips": [{"gateway": "10.0.0.1"}]}),
        json!({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.3/8", "interface": -1}]}),
        json!({"cniVersion": "1.0.0", "routes": [{"gw": "10.0.0.1"}]}),
        json!({"cniVersion": "1.0.0", "routes": [{"dst": "0.0.0.0/0", "gw": "x"}]}),
        json!({"cniVersion": "1.1.0", "routes": [{"dst": "0.0.0.0/0", "scope": 300}]}),
        json!({"cniVersion": "0.2.0", "ip4": {"gateway": "10.0.0.1"}}),
        json!({"cniVersion": "0.2.0", "ip4": "10.0.0.2/8"}),
    ];
    for v in decode {
        assert_eq!(CniResult::from_json(&v).unwrap_err().code, ErrorCode::Decode, "{v}");
    }
    let err = CniResult::from_json(&json!({"cniVersion": "0.9.9"})).unwrap_err();
    assert_eq!(err.code, ErrorCode::IncompatibleVersion);
}

#[test]
fn from_json_as_uses_the_given_version() {
    let v = json!({"ips": [{"address": "10.0.0.2/8"}]});
    let r = CniResult::from_json_as(&v, Version::V1_0_0).unwrap();
    assert_eq!(r.cni_version, Version::V1_0_0);
    let same_family = json!({"cniVersion": "0.3.0", "ips": [{"version": "4", "address": "10.0.0.2/8"}]});
    assert_eq!(CniResult::from_json_as(&same_family, Version::V0_4_0).unwrap().cni_version, Version::V0_4_0);
    let err = CniResult::from_json_as(&same_family, Version::V0_2_0).unwrap_err();
    assert_eq!(err.code, ErrorCode::IncompatibleVersion);
}

#[test]
fn legacy_conversion_errors_say_what_does_not_fit() {
    let none = CniResult::default().to_json(Version::V0_2_0).unwrap_err();
    assert_eq!(none.code, ErrorCode::IncompatibleVersion);
    assert!(none.msg.contains("no IP address"), "{none}");

    let mut six = v4_only();
    six.ips.push(ip("fd00::2/64", None, None));
    six.ips.push(ip("fd00::3/64", None, None));
    let err = six.to_json(Version::V0_1_0).unwrap_err();
    assert!(err.msg.contains("2 IPv6 addresses (fd00::2/64, fd00::3/64)"), "{err}");

    let mut orphan = v4_only();
    orphan.routes.push(route("::/0", Some("fd00::1")));
    let err = orphan.to_json(Version::V0_2_0).unwrap_err();
    assert_eq!(err.code, ErrorCode::IncompatibleVersion);
    assert!(err.msg.contains("route to ::/0"), "{err}");
}

#[test]
fn legacy_routes_go_to_their_family_block() {
    let mut r = v4_only();
    r.ips.push(ip("fd00::2/64", Some("fd00::1"), None));
    r.routes = vec![route("::/0", None), route("0.0.0.0/0", Some("10.1.2.1")), route("10.0.0.0/8", None)];
    let out = r.to_json(Version::V0_2_0).unwrap();
    assert_eq!(out["ip4"]["routes"], json!([{"dst": "0.0.0.0/0", "gw": "10.1.2.1"}, {"dst": "10.0.0.0/8"}]));
    assert_eq!(out["ip6"]["routes"], json!([{"dst": "::/0"}]));
    // Up again: ip4 first, then ip6, routes in block order, as the reference.
    let back = CniResult::from_json(&out).unwrap();
    let dsts: Vec<String> = back.routes.iter().map(|r| r.dst.to_string()).collect();
    assert_eq!(dsts, ["0.0.0.0/0", "10.0.0.0/8", "::/0"]);
    assert_eq!(back.ips[0].interface, None);
}

#[test]
fn convert_equals_emit_then_parse() {
    let r = v4_only();
    for v in Version::ALL {
        let c = r.convert(v).unwrap();
        assert_eq!(c.cni_version, v);
        assert_eq!(c.ips[0].address, r.ips[0].address);
        assert_eq!(c.interfaces.is_empty(), v.is_legacy_result());
    }
}

#[test]
fn dns_serde_omits_empty_fields() {
    let d = Dns { nameservers: vec!["1.1.1.1".into()], ..Dns::default() };
    assert_eq!(serde_json::to_value(&d).unwrap(), json!({"nameservers": ["1.1.1.1"]}));
    assert!(Dns::default().is_empty());
    assert!(!d.is_empty());
    let parsed: Dns = serde_json::from_value(json!({"search": ["a"], "extra": 1})).unwrap();
    assert_eq!(parsed.search, ["a"]);
    let _: Value = serde_json::to_value(parsed).unwrap();
}
