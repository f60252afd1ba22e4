use super::*;
use crate::error::ErrorKind;
use serde_json::json;

fn parse(v: Value) -> Result<IpamConfig, Error> {
    IpamConfig::from_ipam_json("net", &v)
}

fn err(v: Value) -> String {
    let e = parse(v).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
    e.to_string()
}

#[test]
fn full_config() {
    let conf = parse(json!({
        "type": "host-local",
        "ranges": [
            [{"subnet": "10.1.2.0/24", "rangeStart": "10.1.2.9", "rangeEnd": "10.1.2.40", "gateway": "10.1.2.254"},
             {"subnet": "10.1.3.0/24"}],
            [{"subnet": "2001:db8:1::/64"}]
        ],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.1.2.1", "mtu": 1400, "table": 5}],
        "dataDir": "/run/my-orchestrator/container-ipam-state",
        "resolvConf": "/etc/resolv.conf",
        "unknown": {"ignored": true}
    }))
    .unwrap();
    assert_eq!(conf.name, "net");
    assert_eq!(conf.range_sets.len(), 2);
    let r = &conf.range_sets[0].ranges()[0];
    assert_eq!(r.range_start().to_string(), "10.1.2.9");
    assert_eq!(r.gateway().to_string(), "10.1.2.254");
    assert_eq!(conf.range_sets[0].ranges()[1].gateway().to_string(), "10.1.3.1");
    assert_eq!(conf.data_dir, PathBuf::from("/run/my-orchestrator/container-ipam-state"));
    assert_eq!(conf.resolv_conf, Some(PathBuf::from("/etc/resolv.conf")));
    assert_eq!(conf.routes.len(), 2);
    assert_eq!(conf.routes[1].gw, Some("10.1.2.1".parse().unwrap()));
    assert_eq!((conf.routes[1].mtu, conf.routes[1].table, conf.routes[1].scope), (Some(1400), Some(5), None));
    assert_eq!(conf.addresses_per_family(), (1, 1));
}

#[test]
fn defaults() {
    let conf =
        parse(json!({"ranges": [[{"subnet": "10.0.0.0/24"}]], "dataDir": "", "resolvConf": ""})).unwrap();
    assert_eq!(conf.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    assert_eq!(conf.resolv_conf, None);
    assert!(conf.routes.is_empty());
}

#[test]
fn legacy_range_is_prepended() {
    let conf = parse(json!({
        "subnet": "10.0.0.0/24", "rangeStart": "10.0.0.100", "gateway": "",
        "ranges": [[{"subnet": "10.0.1.0/24"}]]
    }))
    .unwrap();
    assert_eq!(conf.range_sets.len(), 2);
    assert_eq!(conf.range_sets[0].to_string(), "10.0.0.100-10.0.0.254");
    assert_eq!(conf.range_sets[0].ranges()[0].gateway().to_string(), "10.0.0.1");
}

#[test]
fn legacy_fields_without_subnet_are_ignored() {
    let conf = parse(json!({"rangeStart": "10.9.9.9", "ranges": [[{"subnet": "10.0.1.0/24"}]]})).unwrap();
    assert_eq!(conf.range_sets.len(), 1);
}

#[test]
fn runtime_ranges_come_first() {
    let runtime = json!([[{"subnet": "192.168.7.0/24"}]]);
    let ipam = json!({"ranges": [[{"subnet": "10.0.1.0/24"}]]});
    let conf = IpamConfig::from_json("net", &ipam, Some(&runtime)).unwrap();
    assert_eq!(conf.range_sets[0].to_string(), "192.168.7.1-192.168.7.254");
    let bad = json!([[{"subnet": "192.168.7.0/33"}]]);
    let e = IpamConfig::from_json("net", &ipam, Some(&bad)).unwrap_err();
    assert!(
        e.to_string().starts_with("runtimeConfig.ipRanges[0][0].subnet: invalid CIDR \"192.168.7.0/33\""),
        "{e}"
    );
}

#[test]
fn bad_inputs_name_field_and_value() {
    assert_eq!(err(json!({})), "ipam: no IP ranges specified");
    assert_eq!(err(json!({"ranges": []})), "ipam: no IP ranges specified");
    assert_eq!(err(json!({"ranges": [[]]})), "ipam.ranges[0]: empty range set");
    assert_eq!(err(json!({"ranges": [[{}]]})), "ipam.ranges[0][0].subnet: missing");
    assert_eq!(
        err(json!({"ranges": [[{"subnet": "10.0.0.0/24", "rangeStart": "10.0.1.1"}]]})),
        "ipam.ranges[0][0].rangeStart: 10.0.1.1 is not in network 10.0.0.0/24"
    );
    assert_eq!(
        err(json!({"ranges": [[{"subnet": "10.0.0.0/24", "rangeEnd": "nope"}]]})),
        "ipam.ranges[0][0].rangeEnd: invalid IP address \"nope\": invalid IP address syntax"
    );
    assert_eq!(
        err(json!({"ranges": [[{"subnet": "10.0.0.0/24"}, {"subnet": "2001:db8::/64"}]]})),
        "ipam.ranges[0]: mixed address families"
    );
    assert_eq!(
        err(json!({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.0.0.0/16"}]]})),
        "ipam: range set 0 overlaps with 1"
    );
    assert!(err(json!({"subnet": "10.0.0.0/31"})).contains("ipam.subnet: network 10.0.0.0/31 too small"));
    assert!(err(json!({"subnet": "10.0.0.3/24"})).contains("host bits set"));
    assert!(err(json!({"subnet": ""})).starts_with("ipam.subnet: invalid CIDR \"\""));
    assert_eq!(err(json!({"ranges": {}})), "ipam.ranges: expected an array of range sets, found an object");
    assert_eq!(err(json!({"ranges": [["x"]]})), "ipam.ranges[0][0]: expected an object, found a string");
    assert_eq!(
        err(json!({"subnet": "10.0.0.0/24", "routes": [{"gw": "10.0.0.1"}]})),
        "ipam.routes[0].dst: missing"
    );
    assert_eq!(
        err(json!({"subnet": "10.0.0.0/24", "routes": [{"dst": "0.0.0.0/0", "mtu": "1500"}]})),
        "ipam.routes[0].mtu: expected an integer, found a string"
    );
    assert_eq!(
        err(json!({"subnet": "10.0.0.0/24", "dataDir": 3})),
        "ipam.dataDir: expected a string, found a number"
    );
    assert_eq!(err(json!([])), "ipam: expected an object, found an array");
}

#[test]
fn network_name_must_be_a_plain_directory_name() {
    let ipam = json!({"subnet": "10.0.0.0/24"});
    for bad in ["", ".", "..", "a/b", "../etc"] {
        let e = IpamConfig::from_ipam_json(bad, &ipam).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{bad}");
    }
    assert!(IpamConfig::from_ipam_json("my-net_1.2", &ipam).is_ok());
}
