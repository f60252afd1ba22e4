use cni_skel::Command;
use serde_json::json;

use super::*;

fn net(v: Value) -> NetConf {
    NetConf::parse(v.to_string().as_bytes()).unwrap()
}

fn base() -> Value {
    json!({"cniVersion": "1.0.0", "name": "net", "type": "bridge",
           "ipam": {"type": "host-local", "subnet": "10.1.0.0/24", "dataDir": "/tmp/x"}})
}

fn cni_args(pairs: &[(&str, &str)]) -> CmdArgs {
    let mut args = CmdArgs::new(Command::Add);
    args.args = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    args
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn requested_in_reference_order() {
    let mut v = base();
    v["args"] = json!({"cni": {"ips": ["10.1.0.20/24"]}});
    v["runtimeConfig"] = json!({"ips": ["10.1.0.30"]});
    let hl = HostLocalConf::parse(&net(v), &cni_args(&[("IP", "10.1.0.10")])).unwrap();
    assert_eq!(hl.requested, ips(&["10.1.0.10", "10.1.0.20", "10.1.0.30"]));
}

#[test]
fn cni_args_ip_forms() {
    let conf = net(base());
    let got = |value: &str| requested_ips(&conf, &cni_args(&[("IP", value)]));
    assert!(got("").unwrap().is_empty());
    assert_eq!(got("10.1.0.7/24").unwrap(), ips(&["10.1.0.7"]));
    assert_eq!(got("10.1.0.7, fd00::7").unwrap(), ips(&["10.1.0.7", "fd00::7"]));
    assert!(
        requested_ips(&conf, &cni_args(&[("IgnoreUnknown", "1"), ("K8S_POD_NAME", "p")])).unwrap().is_empty()
    );
    let err = got("10.1.0").unwrap_err();
    assert_eq!(err.code.code(), 4, "{err}");
    assert!(err.msg.starts_with("CNI_ARGS IP: invalid requested ip \"10.1.0\""), "{err}");
}

#[test]
fn bad_ip_lists_are_config_errors() {
    for (args, runtime, needle) in [
        (json!({"cni": {"ips": "10.1.0.2"}}), json!({}), "args.cni.ips: expected an array of strings"),
        (json!({"cni": {"ips": ["x"]}}), json!({}), "args.cni.ips: invalid requested ip \"x\""),
        (json!({}), json!({"ips": [""]}), "runtimeConfig.ips: invalid requested ip \"\""),
    ] {
        let mut v = base();
        v["args"] = args;
        v["runtimeConfig"] = runtime;
        let err = HostLocalConf::parse(&net(v), &cni_args(&[])).unwrap_err();
        assert_eq!(err.code.code(), 7, "{err}");
        assert!(err.msg.starts_with(needle), "{err}");
    }
}

#[test]
fn ip_ranges_capability_comes_first() {
    let mut v = base();
    v["runtimeConfig"] = json!({"ipRanges": [[{"subnet": "10.9.0.0/24"}]]});
    v["ipam"]["ranges"] = json!([[{"subnet": "fd00::/64"}]]);
    let hl = HostLocalConf::parse(&net(v), &cni_args(&[])).unwrap();
    let subnets: Vec<String> =
        hl.ipam.range_sets.iter().map(|s| s.ranges()[0].subnet().to_string()).collect();
    assert_eq!(subnets, ["10.9.0.0/24", "10.1.0.0/24", "fd00::/64"]);
    assert_eq!(hl.ipam.data_dir, PathBuf::from("/tmp/x"));
}

#[test]
fn routes_become_result_routes() {
    let mut v = base();
    v["ipam"]["routes"] = json!([{"dst": "0.0.0.0/0", "gw": "10.1.0.254", "mtu": 1400, "scope": 253}]);
    let hl = HostLocalConf::parse(&net(v.clone()), &cni_args(&[])).unwrap();
    assert_eq!(hl.routes[0].gw, Some("10.1.0.254".parse().unwrap()));
    assert_eq!((hl.routes[0].mtu, hl.routes[0].scope), (Some(1400), Some(253)));
    v["ipam"]["routes"] = json!([{"dst": "0.0.0.0/0", "scope": 300}]);
    let err = HostLocalConf::parse(&net(v), &cni_args(&[])).unwrap_err();
    assert_eq!((err.code.code(), err.msg.as_str()), (7, "ipam.routes[0].scope: 300 is out of range"));
}

#[test]
fn invalid_ipam_is_code_7() {
    let mut v = base();
    v["ipam"]["subnet"] = json!("10.1.0.1/24");
    let err = HostLocalConf::parse(&net(v), &cni_args(&[])).unwrap_err();
    assert_eq!(err.code.code(), 7);
    assert!(err.msg.contains("host bits set"), "{err}");
    let mut v = base();
    v.as_object_mut().unwrap().remove("ipam");
    let err = HostLocalConf::parse(&net(v.clone()), &cni_args(&[])).unwrap_err();
    assert_eq!((err.code.code(), err.msg.as_str()), (7, "IPAM config missing 'ipam' key"));
    assert_eq!(StoreConf::parse(&net(v)).unwrap_err().code.code(), 7);
}

#[test]
fn store_conf_needs_no_ranges() {
    let conf = net(
        json!({"cniVersion": "1.1.0", "name": "net", "type": "host-local", "ipam": {"type": "host-local"}}),
    );
    let at = StoreConf::parse(&conf).unwrap();
    assert_eq!(at.network_dir(), PathBuf::from("/var/lib/cni/networks/net"));
    for (dir, want) in [(json!(""), "/var/lib/cni/networks"), (json!("/srv/ipam"), "/srv/ipam")] {
        let conf = net(json!({"cniVersion": "1.1.0", "name": "net", "type": "x", "ipam": {"dataDir": dir}}));
        assert_eq!(StoreConf::parse(&conf).unwrap().data_dir, PathBuf::from(want));
    }
    let conf = net(json!({"cniVersion": "1.1.0", "name": "net", "type": "x", "ipam": {"dataDir": 5}}));
    assert_eq!(StoreConf::parse(&conf).unwrap_err().code.code(), 7);
}
