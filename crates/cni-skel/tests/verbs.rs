//! Every verb driven through `run` with a fake plugin.

mod support;

use std::path::PathBuf;

use cni_skel::Command;
use cni_spec::{Error, ErrorCode, Version};
use serde_json::json;
use support::{Fake, conf, env_for, invoke};

#[test]
fn add_prints_the_result_in_the_config_version() {
    for v in Version::ALL.into_iter().filter(|v| !v.is_legacy_result()) {
        let plugin = Fake::default();
        let out = invoke(&plugin, &env_for("ADD"), &conf(v.as_str()));
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(out.json(), plugin.result.to_json(v).unwrap(), "{v}");
        assert_eq!(out.json()["cniVersion"], v.as_str());
        assert_eq!(plugin.called(), [Command::Add]);
    }
}

#[test]
fn add_with_a_0_2_0_config_prints_ip4_form() {
    let mut plugin = Fake::default();
    plugin.result.ips.pop();
    let out = invoke(&plugin, &env_for("ADD"), &conf("0.2.0"));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.json(),
        json!({
            "cniVersion": "0.2.0",
            "ip4": {"ip": "10.1.2.3/24", "gateway": "10.1.2.1",
                    "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.2.1"}]},
            "dns": {}
        })
    );
}

#[test]
fn add_result_that_does_not_fit_the_version_is_an_error() {
    let mut plugin = Fake::default();
    plugin.result.ips.push(plugin.result.ips[0].clone());
    let out = invoke(&plugin, &env_for("ADD"), &conf("0.1.0"));
    let err = out.error(1);
    assert_eq!(err["cniVersion"], "0.1.0");
    assert!(err["msg"].as_str().unwrap().contains("2 IPv4 addresses"), "{err}");
}

#[test]
fn cmd_args_carry_the_environment_and_stdin() {
    let plugin = Fake::default();
    let mut env = env_for("ADD");
    env.insert("CNI_ARGS".into(), "IgnoreUnknown=1;K8S_POD_NAME=web".into());
    let stdin = conf("1.0.0");
    assert_eq!(invoke(&plugin, &env, &stdin).code, 0);
    let args = plugin.last_args();
    assert_eq!(args.command, Command::Add);
    assert_eq!(args.container_id, "c1");
    assert_eq!(args.netns, Some(PathBuf::from("/run/netns/c1")));
    assert_eq!(args.ifname, "eth0");
    assert_eq!(args.raw_args, "IgnoreUnknown=1;K8S_POD_NAME=web");
    assert_eq!(args.arg("K8S_POD_NAME"), Some("web"));
    assert_eq!(args.arg("nope"), None);
    assert_eq!(args.path, [PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")]);
    assert_eq!(args.stdin, stdin);
    let (_, _, conf) = plugin.calls.borrow()[0].clone();
    assert_eq!((conf.name.as_str(), conf.plugin_type.as_str()), ("podnet", "fake"));
}

#[test]
fn netns_is_passed_through_unchecked() {
    let plugin = Fake::default();
    let mut env = env_for("ADD");
    env.insert("CNI_NETNS".into(), "relative/does-not-exist".into());
    assert_eq!(invoke(&plugin, &env, &conf("1.0.0")).code, 0);
    assert_eq!(plugin.last_args().netns, Some(PathBuf::from("relative/does-not-exist")));
}

#[test]
fn check_runs_from_0_4_0() {
    for v in ["0.4.0", "1.0.0", "1.1.0"] {
        let plugin = Fake::default();
        invoke(&plugin, &env_for("CHECK"), &conf(v)).ok_empty();
        assert_eq!(plugin.called(), [Command::Check]);
    }
}

#[test]
fn del_prints_nothing_and_needs_no_netns() {
    let plugin = Fake::default();
    let mut env = env_for("DEL");
    env.remove("CNI_NETNS");
    invoke(&plugin, &env, &conf("0.3.1")).ok_empty();
    assert_eq!(plugin.called(), [Command::Del]);
    assert_eq!(plugin.last_args().netns, None);
}

#[test]
fn del_works_in_legacy_versions() {
    let plugin = Fake::default();
    invoke(&plugin, &env_for("DEL"), &conf("0.1.0")).ok_empty();
    invoke(&plugin, &env_for("DEL"), br#"{"name": "n", "type": "fake"}"#).ok_empty();
    assert_eq!(plugin.called(), [Command::Del, Command::Del]);
}

#[test]
fn gc_and_status_need_only_command_and_path() {
    for (cmd, verb) in [("GC", Command::Gc), ("STATUS", Command::Status)] {
        let plugin = Fake::default();
        let mut env = env_for(cmd);
        for key in ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"] {
            env.remove(key);
        }
        invoke(&plugin, &env, &conf("1.1.0")).ok_empty();
        assert_eq!(plugin.called(), [verb]);
        assert_eq!(plugin.last_args().container_id, "");
    }
}

#[test]
fn plugin_errors_are_printed_in_the_config_version() {
    let plugin = Fake {
        fail: Some(Error::new(ErrorCode::Plugin(117), "range full").with_details("10.1.2.0/24")),
        ..Fake::default()
    };
    for cmd in ["ADD", "CHECK", "DEL"] {
        let out = invoke(&plugin, &env_for(cmd), &conf("0.4.0"));
        assert_eq!(
            out.error(117),
            json!({"cniVersion": "0.4.0", "code": 117, "msg": "range full", "details": "10.1.2.0/24"})
        );
    }
    for cmd in ["GC", "STATUS"] {
        let out = invoke(&plugin, &env_for(cmd), &conf("1.1.0"));
        assert_eq!(out.error(117)["cniVersion"], "1.1.0");
    }
}

#[test]
fn status_can_report_not_available() {
    let plugin =
        Fake { fail: Some(Error::new(ErrorCode::NotAvailable, "no addresses left")), ..Fake::default() };
    let err = invoke(&plugin, &env_for("STATUS"), &conf("1.1.0")).error(50);
    assert_eq!(err["msg"], "no addresses left");
}

#[test]
fn a_panicking_plugin_becomes_code_999() {
    let plugin = Fake { panic: true, ..Fake::default() };
    let err = invoke(&plugin, &env_for("ADD"), &conf("1.0.0")).error(999);
    assert_eq!(err["cniVersion"], "1.1.0");
}

#[test]
fn version_answers_in_the_given_version() {
    let plugin = Fake::default();
    let env = [("CNI_COMMAND".to_string(), "VERSION".to_string())].into_iter().collect();
    let out = invoke(&plugin, &env, br#"{"cniVersion": "0.4.0"}"#);
    assert_eq!(out.code, 0);
    assert_eq!(
        out.json(),
        json!({"cniVersion": "0.4.0", "supportedVersions": ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]})
    );
    assert!(plugin.called().is_empty());
}

#[test]
fn version_without_input_answers_in_the_highest() {
    let plugin = Fake { versions: vec![Version::V0_3_1, Version::V0_4_0], ..Fake::default() };
    let env = [("CNI_COMMAND".to_string(), "VERSION".to_string())].into_iter().collect();
    for stdin in [&b""[..], b"  \n", b"{}", br#"{"cniVersion": ""}"#] {
        let out = invoke(&plugin, &env, stdin);
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(out.json(), json!({"cniVersion": "0.4.0", "supportedVersions": ["0.3.1", "0.4.0"]}));
    }
}

#[test]
fn version_with_undecodable_input_is_code_6() {
    let plugin = Fake::default();
    let env = [("CNI_COMMAND".to_string(), "VERSION".to_string())].into_iter().collect();
    let err = invoke(&plugin, &env, b"not json").error(6);
    assert_eq!(err["cniVersion"], "1.1.0");
}

#[test]
fn gc_ignores_cni_args() {
    let plugin = Fake::default();
    let mut env = env_for("GC");
    env.insert("CNI_ARGS".into(), "not-a-pair".into());
    invoke(&plugin, &env, &conf("1.1.0")).ok_empty();
    assert!(plugin.last_args().args.is_empty());
}
