use cni_skel::Command;
use serde_json::json;

use super::*;

fn parse(version: &str, ipam: Value) -> Result<WhereaboutsConf, Error> {
    let v = json!({"cniVersion": version, "name": "wbnet", "type": "macvlan", "ipam": ipam});
    let nc = NetConf::parse(v.to_string().as_bytes()).unwrap();
    WhereaboutsConf::parse(&nc, &CmdArgs::new(Command::Add), &[])
}

fn ok(ipam: Value) -> WhereaboutsConf {
    parse("1.0.0", ipam).unwrap()
}

fn err(ipam: Value) -> Error {
    parse("1.0.0", ipam).unwrap_err()
}

#[test]
fn readme_example() {
    let wc = ok(json!({"type": "whereabouts", "range": "192.168.2.225/28",
        "exclude": ["192.168.2.229/30", "192.168.2.236/32"], "datastore": "file:/x"}));
    assert_eq!(wc.ranges.len(), 1);
    let r = &wc.ranges[0];
    assert_eq!(r.subnet().to_string(), "192.168.2.224/28");
    assert_eq!(r.size(), 9);
    assert!(wc.overlapping);
    assert_eq!(wc.network, "");
    assert_eq!(wc.cni_network, "wbnet");
}

#[test]
fn range_then_ip_ranges_with_their_own_bounds_and_exclusions() {
    let wc = ok(json!({
        "range": "abcd::1/64",
        "ipRanges": [
            {"range": "192.168.10.1/24", "range_start": "192.168.10.50", "range_end": "192.168.10.60",
             "exclude": ["192.168.10.55"]},
            {"range": "10.5.0.10-10.5.0.20/24"}
        ],
        "gateway": "192.168.10.1", "network_name": "blue", "enable_overlapping_ranges": false,
        "routes": [{"dst": "0.0.0.0/0"}], "dns": {"nameservers": ["10.0.0.53"]},
        "addresses": [{"address": "10.99.0.5/24", "gateway": "10.99.0.1"}]
    }));
    let subnets: Vec<String> = wc.ranges.iter().map(|r| r.subnet().to_string()).collect();
    assert_eq!(subnets, ["abcd::/64", "192.168.10.0/24", "10.5.0.0/24"]);
    assert_eq!(wc.ranges[1].size(), 10);
    assert!(!wc.ranges[1].offers("192.168.10.55".parse().unwrap()));
    assert_eq!(wc.ranges[2].window().0.to_string(), "10.5.0.10");
    assert_eq!(wc.ranges[2].size(), 11);
    assert_eq!(wc.network, "blue");
    assert!(!wc.overlapping);
    assert_eq!(wc.routes.len(), 1);
    assert_eq!(wc.dns.nameservers, ["10.0.0.53"]);
    assert_eq!(wc.addresses.len(), 1);
}

#[test]
fn the_gateway_is_never_handed_out() {
    let wc = ok(json!({"range": "10.1.0.0/24", "gateway": "10.1.0.1"}));
    assert!(!wc.ranges[0].offers("10.1.0.1".parse().unwrap()));
    assert_eq!(wc.ranges[0].size(), 253);
}

#[test]
fn ignored_knobs_are_noted() {
    let wc = ok(json!({"range": "10.1.0.0/24", "leader_lease_duration": 1500, "sleep_for_race": 1}));
    assert_eq!(wc.notes.len(), 2);
    assert!(wc.notes[0].contains("leader_lease_duration is ignored"), "{:?}", wc.notes);
}

#[test]
fn bad_configs_name_the_field() {
    let cases = [
        (json!({}), "no range"),
        (json!({"range": "10.0.0.0"}), "ipam.range"),
        (json!({"range": "10.0.0.0/24", "range_start": "10.1.0.5"}), "not in 10.0.0.0/24"),
        (json!({"range": "10.0.0.0/24", "range_start": "x"}), "ipam.range_start"),
        (json!({"range": "10.0.0.0/24", "exclude": ["nope"]}), "ipam.exclude[0]"),
        (json!({"range": "10.0.0.0/24", "exclude": "10.0.0.0/30"}), "ipam.exclude"),
        (json!({"ipRanges": [{"range_start": "10.0.0.1"}]}), "ipam.ipRanges[0].range: missing"),
        (json!({"ipRanges": [5]}), "ipam.ipRanges[0]: expected an object"),
        (json!({"ipRanges": {}}), "ipam.ipRanges: expected an array"),
        (json!({"range": "10.0.0.0/31"}), "no usable addresses"),
        (json!({"range": "10.0.0.0/24", "gateway": "gw"}), "ipam.gateway"),
        (json!({"range": "10.0.0.0/24", "network_name": "Blue_1"}), "ipam.network_name"),
        (json!({"range": "10.0.0.0/24", "enable_overlapping_ranges": "yes"}), "enable_overlapping_ranges"),
        (json!({"range": "10.0.0.0/24", "node_slice_size": "/28"}), "node slices are not supported"),
        (json!({"range": "10.0.0.0/24", "routes": [{"dst": "x"}]}), "routes[0].dst"),
    ];
    for (ipam, want) in cases {
        let e = err(ipam.clone());
        assert_eq!(e.code.code(), 7, "{ipam}: {}", e.msg);
        assert!(e.msg.contains(want), "{ipam}: {}", e.msg);
    }
}

#[test]
fn legacy_versions_take_one_address_per_family() {
    let two = json!({"ipRanges": [{"range": "10.1.0.0/24"}, {"range": "10.2.0.0/24"}]});
    let wc = parse("0.2.0", two.clone()).unwrap();
    let e = super::super::check_representable(&wc).unwrap_err();
    assert_eq!(e.code.code(), 1, "{}", e.msg);
    super::super::check_representable(&parse("0.3.1", two).unwrap()).unwrap();
    let dual = json!({"ipRanges": [{"range": "10.1.0.0/24"}, {"range": "fd00::/64"}]});
    super::super::check_representable(&parse("0.2.0", dual).unwrap()).unwrap();
}
