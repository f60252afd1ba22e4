use std::collections::HashMap;

use cni_skel::Command;
use serde_json::json;

use super::*;

fn net(v: Value) -> NetConf {
    NetConf::parse(v.to_string().as_bytes()).unwrap()
}

fn with_ipam(version: &str, ipam: Value) -> NetConf {
    net(json!({"cniVersion": version, "name": "n", "type": "static", "ipam": ipam}))
}

fn cni_args(pairs: &[(&str, &str)]) -> CmdArgs {
    let mut args = CmdArgs::new(Command::Add);
    args.args = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    args
}

fn addrs(sc: &StaticConf) -> Vec<String> {
    sc.addresses
        .iter()
        .map(|a| format!("{}>{}", a.address, a.gateway.map(|g| g.to_string()).unwrap_or_default()))
        .collect()
}

#[test]
fn reads_addresses_routes_dns() {
    let conf = with_ipam(
        "1.0.0",
        json!({"type": "static",
               "addresses": [{"address": "10.10.0.1/24", "gateway": "10.10.0.254"}, {"address": "3ffe:ffff:0:01ff::1/64"}],
               "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.10.5.1", "mtu": 1400, "scope": 253}],
               "dns": {"nameservers": ["8.8.8.8"], "domain": "example.com", "search": ["example.com"]}}),
    );
    let sc = StaticConf::parse(&conf, &cni_args(&[])).unwrap();
    assert_eq!(addrs(&sc), ["10.10.0.1/24>10.10.0.254", "3ffe:ffff:0:1ff::1/64>"]);
    assert_eq!(sc.routes[1].gw, Some("10.10.5.1".parse().unwrap()));
    assert_eq!((sc.routes[1].mtu, sc.routes[1].scope), (Some(1400), Some(253)));
    assert_eq!(sc.dns.nameservers, ["8.8.8.8"]);
    let out = sc.result(Version::V1_0_0).to_json(Version::V1_0_0).unwrap();
    assert_eq!(out["ips"][0], json!({"address": "10.10.0.1/24", "gateway": "10.10.0.254"}));
    assert_eq!(out["ips"][1], json!({"address": "3ffe:ffff:0:1ff::1/64"}));
}

#[test]
fn cni_args_add_addresses_and_gateways() {
    let conf =
        with_ipam("1.0.0", json!({"addresses": [{"address": "10.10.0.1/24", "gateway": "10.10.0.254"}]}));
    let args = cni_args(&[("IP", "10.1.0.5/24, 10.2.0.5/24"), ("GATEWAY", "10.1.0.1")]);
    let sc = StaticConf::parse(&conf, &args).unwrap();
    assert_eq!(addrs(&sc), ["10.10.0.1/24>10.10.0.254", "10.1.0.5/24>10.1.0.1", "10.2.0.5/24>"]);
    // An empty IP= is no address.
    assert_eq!(StaticConf::parse(&conf, &cni_args(&[("IP", "")])).unwrap().addresses.len(), 1);
}

#[test]
fn args_then_runtime_config_replace_everything() {
    let mut v = json!({"cniVersion": "1.0.0", "name": "n", "type": "static",
                       "ipam": {"addresses": [{"address": "10.10.0.1/24"}]},
                       "args": {"cni": {"ips": ["10.3.0.1/16"]}}});
    let sc = StaticConf::parse(&net(v.clone()), &cni_args(&[("IP", "10.1.0.5/24")])).unwrap();
    assert_eq!(addrs(&sc), ["10.3.0.1/16>"]);
    v["runtimeConfig"] = json!({"ips": ["10.4.0.1/16", "fd00::4/64"]});
    let sc = StaticConf::parse(&net(v.clone()), &cni_args(&[])).unwrap();
    assert_eq!(addrs(&sc), ["10.4.0.1/16>", "fd00::4/64>"]);
    v["runtimeConfig"] = json!({"ips": []});
    assert_eq!(addrs(&StaticConf::parse(&net(v), &cni_args(&[])).unwrap()), ["10.3.0.1/16>"]);
}

/// An `ipam` object, CNI_ARGS pairs, the expected code and the start of the message.
type BadCase = (Value, &'static [(&'static str, &'static str)], u32, &'static str);

#[test]
fn bad_inputs_name_the_field_and_code() {
    let cases: [BadCase; 7] = [
        (
            json!({"addresses": [{"address": "10.10.0.1"}]}),
            &[],
            7,
            "ipam.addresses[0]: the 'address' field is expected to be in CIDR notation, got: '10.10.0.1'",
        ),
        (
            json!({"addresses": [{"address": "10.10.0.1/24", "gateway": "zz"}]}),
            &[],
            7,
            "ipam.addresses[0].gateway: invalid IP address: zz",
        ),
        (json!({"addresses": "10.0.0.1/24"}), &[], 7, "ipam.addresses: expected an array"),
        (json!({"routes": [{"dst": "10.0.0.0"}]}), &[], 7, "ipam.routes[0].dst: invalid CIDR"),
        (json!({"routes": [{"dst": "10.0.0.0/8", "mtu": -1}]}), &[], 7, "ipam.routes[0]: invalid value"),
        (
            json!({}),
            &[("IP", "10.1.0.5")],
            4,
            "CNI_ARGS IP: the 'ip' field is expected to be in CIDR notation, got: '10.1.0.5'",
        ),
        (
            json!({}),
            &[("IP", "10.1.0.5/24"), ("GATEWAY", "x")],
            4,
            "CNI_ARGS GATEWAY: invalid gateway address: x",
        ),
    ];
    for (ipam, pairs, code, msg) in cases {
        let err = StaticConf::parse(&with_ipam("1.0.0", ipam.clone()), &cni_args(pairs)).unwrap_err();
        assert_eq!(err.code.code(), code, "{ipam} {err}");
        assert!(err.msg.starts_with(msg), "{ipam}: {err}");
    }
    let no_ipam = net(json!({"cniVersion": "1.0.0", "name": "n", "type": "static"}));
    assert_eq!(StaticConf::parse(&no_ipam, &cni_args(&[])).unwrap_err().code.code(), 7);
    let runtime = net(json!({"cniVersion": "1.0.0", "name": "n", "type": "static", "ipam": {},
                             "runtimeConfig": {"ips": ["10.0.0.1"]}}));
    let err = StaticConf::parse(&runtime, &cni_args(&[])).unwrap_err();
    assert_eq!(
        (err.code.code(), err.msg.as_str()),
        (7, "runtimeConfig.ips: an entry is not in CIDR notation, got: '10.0.0.1'")
    );
}

#[test]
fn legacy_versions_take_one_address_per_family() {
    let two = json!({"addresses": [{"address": "10.0.0.1/24"}, {"address": "10.0.1.1/24"}]});
    let err = StaticConf::parse(&with_ipam("0.2.0", two.clone()), &cni_args(&[])).unwrap_err();
    assert_eq!(err.code.code(), 1);
    assert_eq!(err.msg, "CNI version 0.2.0 does not support more than 1 address per family");
    assert!(StaticConf::parse(&with_ipam("0.3.0", two), &cni_args(&[])).is_ok());
}

#[test]
fn mapped_ipv6_becomes_ipv4() {
    assert_eq!(cidr("::ffff:10.0.0.1/120"), Some("10.0.0.1/24".parse().unwrap()));
    assert_eq!(cidr("::ffff:10.0.0.1/64"), None);
}

/// One invocation through the skel, as a runtime would make it.
fn invoke(command: &str, conf: &Value) -> (i32, Value) {
    let env: HashMap<String, String> = [
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_NETNS", "/var/run/netns/x"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = cni_skel::run(&Static, "", &env, &mut conf.to_string().as_bytes(), &mut out, &mut err);
    let value = if out.is_empty() { Value::Null } else { serde_json::from_slice(&out).unwrap() };
    (code, value)
}

#[test]
fn answers_every_version() {
    for version in Version::ALL {
        let conf = json!({"cniVersion": version.as_str(), "name": "n", "type": "static",
                          "ipam": {"addresses": [{"address": "10.10.0.1/24", "gateway": "10.10.0.254"}],
                                   "routes": [{"dst": "0.0.0.0/0"}]}});
        let (code, out) = invoke("ADD", &conf);
        assert_eq!(code, 0, "{version}: {out}");
        assert_eq!(out["cniVersion"], version.as_str());
        let ip = if version.is_legacy_result() { &out["ip4"]["ip"] } else { &out["ips"][0]["address"] };
        assert_eq!(ip, "10.10.0.1/24", "{version}: {out}");
        if version.supports_check() {
            let mut check = conf.clone();
            check["prevResult"] = out.clone();
            assert_eq!(invoke("CHECK", &check).0, 0, "{version}");
            check["prevResult"]["ips"][0]["gateway"] = json!("10.10.0.9");
            let (code, err) = invoke("CHECK", &check);
            assert_eq!((code, err["code"].as_u64()), (1, Some(999)), "{version}: {err}");
            check["prevResult"]["ips"][0]["address"] = json!("10.10.0.2/24");
            assert!(invoke("CHECK", &check).1["msg"].as_str().unwrap().contains("not in prevResult"));
        }
        assert_eq!(invoke("DEL", &conf).0, 0);
        if version.supports_gc() {
            assert_eq!(invoke("GC", &conf).0, 0);
            assert_eq!(invoke("STATUS", &conf).0, 0);
        }
    }
}
