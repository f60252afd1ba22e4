//! Plugin configuration parsing.

use cni_spec::{CniResult, Dns, ErrorCode, NetConf, Version};
use serde::Deserialize;
use serde_json::json;

fn parse(v: serde_json::Value) -> Result<NetConf, cni_spec::Error> {
    NetConf::parse(v.to_string().as_bytes())
}

fn full() -> serde_json::Value {
    json!({
        "cniVersion": "1.0.0",
        "name": "podnet",
        "type": "bridge",
        "bridge": "cni0",
        "isGateway": true,
        "capabilities": {"portMappings": true, "bandwidth": false},
        "ipam": {"type": "host-local", "subnet": "10.1.2.0/24"},
        "dns": {"nameservers": ["10.96.0.10"], "domain": ""},
        "args": {"cni": {"ips": ["10.1.2.9"]}},
        "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]},
        "prevResult": {"cniVersion": "1.0.0", "ips": [{"address": "10.1.2.3/24"}]},
        "x-vendor": {"kept": [1, 2]}
    })
}

#[test]
fn parses_every_known_field_and_keeps_unknown_ones() {
    let conf = parse(full()).unwrap();
    assert_eq!(conf.cni_version, "1.0.0");
    assert_eq!(conf.version().unwrap(), Version::V1_0_0);
    assert_eq!(conf.name, "podnet");
    assert_eq!(conf.plugin_type, "bridge");
    assert_eq!(conf.capabilities.get("portMappings"), Some(&true));
    assert_eq!(conf.capabilities.get("bandwidth"), Some(&false));
    assert_eq!(conf.ipam_type(), Some("host-local"));
    assert_eq!(conf.dns, Some(Dns { nameservers: vec!["10.96.0.10".into()], ..Dns::default() }));
    assert_eq!(conf.args, Some(json!({"cni": {"ips": ["10.1.2.9"]}})));
    assert!(conf.runtime_config.contains_key("portMappings"));
    assert_eq!(conf.raw.get("x-vendor"), Some(&json!({"kept": [1, 2]})));
    let back: serde_json::Value = serde_json::from_slice(&conf.to_bytes()).unwrap();
    assert_eq!(back, full());
}

#[test]
fn to_bytes_keeps_key_order() {
    let text = r#"{"type":"ptp","zeta":1,"name":"n","alpha":2}"#;
    let conf = NetConf::parse(text.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(conf.to_bytes()).unwrap(), text);
}

#[test]
fn minimal_config_defaults() {
    let conf = parse(json!({"type": "loopback"})).unwrap();
    assert_eq!(conf.cni_version, "");
    assert_eq!(conf.version().unwrap(), Version::V0_1_0);
    assert_eq!(conf.name, "");
    assert!(conf.capabilities.is_empty());
    assert!(conf.runtime_config.is_empty());
    assert_eq!((conf.ipam, conf.dns, conf.args, conf.prev_result), (None, None, None, None));
    assert_eq!(parse(json!({"type": "x", "ipam": {}})).unwrap().ipam_type(), None);
}

#[test]
fn undecodable_input_is_code_6() {
    for bad in [&b""[..], b"{", b"not json", b"\xff\xfe"] {
        assert_eq!(NetConf::parse(bad).unwrap_err().code, ErrorCode::Decode);
    }
    for v in [json!([]), json!("conf"), json!(null), json!(3)] {
        let err = parse(v.clone()).unwrap_err();
        assert_eq!(err.code, ErrorCode::Decode, "{v}");
        assert!(err.msg.contains("JSON object"), "{err}");
    }
}

#[test]
fn fields_of_the_wrong_type_are_code_6() {
    let cases = [
        json!({"type": 5}),
        json!({"type": "x", "cniVersion": 1}),
        json!({"type": "x", "name": ["n"]}),
        json!({"type": "x", "capabilities": {"portMappings": "yes"}}),
        json!({"type": "x", "ipam": "host-local"}),
        json!({"type": "x", "dns": {"nameservers": "1.1.1.1"}}),
        json!({"type": "x", "runtimeConfig": []}),
    ];
    for v in cases {
        assert_eq!(parse(v.clone()).unwrap_err().code, ErrorCode::Decode, "{v}");
    }
}

#[test]
fn missing_or_empty_type_is_code_7() {
    for v in [json!({"name": "n"}), json!({"type": ""}), json!({"type": null})] {
        let err = parse(v.clone()).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidConfig, "{v}");
        assert!(err.msg.contains("type"), "{err}");
    }
}

#[test]
fn unknown_version_is_code_1() {
    let conf = parse(json!({"type": "x", "cniVersion": "0.9.0"})).unwrap();
    assert_eq!(conf.version().unwrap_err().code, ErrorCode::IncompatibleVersion);
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct BridgeConf {
    bridge: String,
    #[serde(default)]
    is_gateway: bool,
    #[serde(default)]
    mtu: Option<u32>,
}

#[test]
fn plugin_conf_deserializes_the_plugin_struct() {
    let conf = parse(full()).unwrap();
    let own: BridgeConf = conf.plugin_conf().unwrap();
    assert_eq!(own, BridgeConf { bridge: "cni0".into(), is_gateway: true, mtu: None });
}

#[test]
fn plugin_conf_failure_is_code_7_with_serdes_message() {
    let conf = parse(json!({"type": "bridge", "bridge": "br0", "mtu": "big"})).unwrap();
    let err = conf.plugin_conf::<BridgeConf>().unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidConfig);
    assert!(err.msg.contains("invalid type: string \"big\""), "{err}");
    let missing = parse(json!({"type": "bridge"})).unwrap();
    let err = missing.plugin_conf::<BridgeConf>().unwrap_err();
    assert!(err.msg.contains("missing field `bridge`"), "{err}");
}

#[test]
fn prev_result_is_read_in_the_config_version() {
    let conf = parse(full()).unwrap();
    let prev = conf.prev_result().unwrap().unwrap();
    assert_eq!(prev.cni_version, Version::V1_0_0);
    assert_eq!(prev.ips[0].address.to_string(), "10.1.2.3/24");

    let legacy = parse(json!({
        "type": "x", "cniVersion": "0.2.0",
        "prevResult": {"ip4": {"ip": "10.0.0.2/8"}}
    }))
    .unwrap();
    let prev = legacy.prev_result().unwrap().unwrap();
    assert_eq!((prev.cni_version, prev.ips.len()), (Version::V0_2_0, 1));
    assert_eq!(parse(json!({"type": "x"})).unwrap().prev_result().unwrap(), None);
}

#[test]
fn bad_prev_result_is_an_error() {
    let bad =
        parse(json!({"type": "x", "cniVersion": "1.0.0", "prevResult": {"ips": [{"address": "nope"}]}}));
    assert_eq!(bad.unwrap().prev_result().unwrap_err().code, ErrorCode::Decode);
    let mismatched =
        parse(json!({"type": "x", "cniVersion": "1.0.0", "prevResult": {"cniVersion": "0.2.0"}}));
    let err = mismatched.unwrap().prev_result().unwrap_err();
    assert_eq!(err.code, ErrorCode::IncompatibleVersion);
}

#[test]
fn set_prev_result_writes_the_config_version_shape() {
    let mut conf = parse(json!({"type": "x", "cniVersion": "0.4.0"})).unwrap();
    let result = CniResult::from_json(&json!({
        "cniVersion": "1.1.0", "ips": [{"address": "10.1.2.3/24"}]
    }))
    .unwrap();
    conf.set_prev_result(&result).unwrap();
    let expected =
        json!({"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.1.2.3/24"}], "dns": {}});
    assert_eq!(conf.raw.get("prevResult"), Some(&expected));
    assert_eq!(conf.prev_result, Some(expected));
    let again = NetConf::parse(&conf.to_bytes()).unwrap();
    assert_eq!(again.prev_result().unwrap().unwrap().ips, result.ips);
}

/// fuzz: netconf. A number in a config must pass through unchanged: serde_json's default
/// float parsing could be off by one unit in the last place (6.254555555555554e186 came back
/// as ...555e186), changing what the next plugin of a chain is given.
#[test]
fn numbers_pass_through_exactly() {
    let text =
        br#"{"type":"x","a":6.254555555555554e+186,"b":0.1,"c":1e-300,"d":18446744073709551615,"e":-0.0}"#;
    let conf = NetConf::parse(text).unwrap();
    let again = NetConf::parse(&conf.to_bytes()).unwrap();
    assert_eq!(again, conf);
    assert_eq!(conf.raw["a"].as_f64(), Some(6.254555555555554e186));
}
