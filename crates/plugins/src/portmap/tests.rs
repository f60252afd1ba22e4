//! The verbs without privileges: everything that must not touch the firewall.

use cni_skel::Command;
use cni_spec::Version;
use serde_json::{Value, json};

use super::*;
use crate::fixture::{merged, net_conf};

fn args(command: Command) -> CmdArgs {
    CmdArgs { container_id: "c1".into(), ifname: "eth0".into(), ..CmdArgs::new(command) }
}

/// A prevResult in the shape of `version`, as the interface plugin before us printed it.
fn prev(version: Version) -> Value {
    let v = version.as_str();
    if version.is_legacy_result() {
        json!({"cniVersion": v, "ip4": {"ip": "10.88.0.2/24", "gateway": "10.88.0.1"}})
    } else {
        let mut ip = json!({"address": "10.88.0.2/24", "gateway": "10.88.0.1", "interface": 1});
        if version < Version::V1_0_0 {
            ip["version"] = json!("4");
        }
        json!({"cniVersion": v,
            "interfaces": [{"name": "cni0", "mac": "02:00:00:00:00:01"},
                           {"name": "eth0", "mac": "02:00:00:00:00:02", "sandbox": "/run/netns/x"}],
            "ips": [ip],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dns": {"nameservers": ["10.88.0.1"]}})
    }
}

fn conf(version: Version, extra: Value) -> NetConf {
    let v = json!({"cniVersion": version.as_str(), "name": "net", "type": "portmap",
        "prevResult": prev(version)});
    net_conf(&merged(v, &extra))
}

#[test]
fn add_without_mappings_passes_prev_result_through_in_every_version() {
    for version in Version::ALL {
        let c = conf(version, json!({"runtimeConfig": {"portMappings": []}}));
        let out = Portmap.add(&args(Command::Add), &c).unwrap_or_else(|e| panic!("{version}: {e}"));
        assert_eq!(out, CniResult::from_json_as(&prev(version), version).unwrap(), "{version}");
        if !version.is_legacy_result() {
            // 0.1.0/0.2.0 results always carry `dns`, as the reference's types print them.
            assert_eq!(out.to_json(version).unwrap(), prev(version), "{version}");
        }
    }
}

#[test]
fn mappings_for_another_family_touch_nothing() {
    let maps = json!({"runtimeConfig": {"portMappings": [
        {"hostPort": 80, "containerPort": 80, "protocol": "tcp", "hostIP": "2001:db8::1"}]}});
    let c = conf(Version::V1_0_0, maps);
    let out = Portmap.add(&args(Command::Add), &c).unwrap();
    assert_eq!(out.to_json(Version::V1_0_0).unwrap(), prev(Version::V1_0_0));
    Portmap.check(&args(Command::Check), &c).unwrap();
}

#[test]
fn verbs_without_mappings_succeed_without_the_firewall() {
    for version in Version::ALL {
        let c = conf(version, json!({}));
        Portmap.del(&args(Command::Del), &c).unwrap();
        if version.supports_check() {
            Portmap.check(&args(Command::Check), &c).unwrap();
        }
    }
}

#[test]
fn add_needs_prev_result() {
    let mut c = conf(Version::V1_0_0, json!({}));
    c.prev_result = None;
    let err = Portmap.add(&args(Command::Add), &c).unwrap_err();
    assert_eq!(err.code.code(), 7);
    assert!(err.msg.contains("chained plugin"), "{err}");
}

#[test]
fn bad_mappings_fail_before_anything_is_done() {
    let c = conf(
        Version::V1_0_0,
        json!({"runtimeConfig": {"portMappings": [
            {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
            {"hostPort": 0, "containerPort": 80, "protocol": "tcp"}]}}),
    );
    let err = Portmap.add(&args(Command::Add), &c).unwrap_err();
    assert_eq!(err.code.code(), 7);
    assert!(err.msg.contains("invalid host port number 0"), "{err}");
}

#[test]
fn status_validates_the_config() {
    Portmap.status(&args(Command::Status), &conf(Version::V1_1_0, json!({}))).unwrap();
    let err = Portmap.status(&args(Command::Status), &conf(Version::V1_1_0, json!({"markMasqBit": 40})));
    assert_eq!(err.unwrap_err().code.code(), 7);
}
