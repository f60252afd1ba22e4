//! Every bad invocation and its exact error code.

mod support;

use std::io::{self, Read, Write};

use cni_skel::{Env, ProcessEnv, run};
use cni_spec::Version;
use serde_json::json;
use support::{Fake, conf, env_for, invoke};

#[test]
fn missing_command_is_code_4_and_prints_about() {
    let plugin = Fake::default();
    let mut env = env_for("ADD");
    env.remove("CNI_COMMAND");
    let out = invoke(&plugin, &env, &conf("1.0.0"));
    let err = out.error(4);
    assert!(err["msg"].as_str().unwrap().contains("CNI_COMMAND"), "{err}");
    assert_eq!(err["cniVersion"], "1.1.0");
    assert!(out.stderr.contains("fake plugin v0"), "{out:?}");
    assert!(out.stderr.contains("0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0"), "{out:?}");
    assert!(plugin.called().is_empty());
}

#[test]
fn unknown_command_is_code_4_naming_it() {
    for cmd in ["FOO", "add", "Add", " ADD"] {
        let plugin = Fake::default();
        let err = invoke(&plugin, &env_for(cmd), &conf("1.0.0")).error(4);
        let msg = err["msg"].as_str().unwrap();
        assert!(msg.contains("CNI_COMMAND") && msg.contains(cmd), "{err}");
    }
}

#[test]
fn each_missing_variable_is_named() {
    let required = [
        ("ADD", &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"][..]),
        ("CHECK", &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"]),
        ("DEL", &["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"]),
        ("GC", &["CNI_PATH"]),
        ("STATUS", &["CNI_PATH"]),
    ];
    for (cmd, vars) in required {
        for var in vars {
            for value in [None, Some("")] {
                let plugin = Fake::default();
                let mut env = env_for(cmd);
                match value {
                    None => env.remove(*var),
                    Some(v) => env.insert(var.to_string(), v.to_string()),
                };
                let err = invoke(&plugin, &env, &conf("1.1.0")).error(4);
                assert!(err["msg"].as_str().unwrap().contains(var), "{cmd} {var}: {err}");
                assert!(plugin.called().is_empty());
            }
        }
    }
}

#[test]
fn all_missing_variables_are_listed_together() {
    let plugin = Fake::default();
    let env = [("CNI_COMMAND".to_string(), "ADD".to_string())].into_iter().collect();
    let err = invoke(&plugin, &env, &conf("1.0.0")).error(4);
    assert_eq!(err["msg"], "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing");
}

#[test]
fn bad_container_id_ifname_and_args_are_code_4() {
    let cases = [
        ("CNI_CONTAINERID", "-bad"),
        ("CNI_CONTAINERID", "a b"),
        ("CNI_IFNAME", "this-name-is-too-long"),
        ("CNI_IFNAME", "eth/0"),
        ("CNI_IFNAME", ".."),
        ("CNI_ARGS", "K8S_POD_NAME"),
        ("CNI_ARGS", "A=1;;B=2"),
    ];
    for (key, value) in cases {
        let plugin = Fake::default();
        let mut env = env_for("ADD");
        env.insert(key.into(), value.into());
        invoke(&plugin, &env, &conf("1.0.0")).error(4);
        assert!(plugin.called().is_empty(), "{key}={value}");
    }
}

#[test]
fn undecodable_stdin_is_code_6_in_the_highest_version() {
    let plugin = Fake { versions: vec![Version::V0_3_1, Version::V1_0_0], ..Fake::default() };
    for stdin in [&b""[..], b"{", b"[1]", b"\"conf\""] {
        let err = invoke(&plugin, &env_for("ADD"), stdin).error(6);
        assert_eq!(err["cniVersion"], "1.0.0");
    }
}

#[test]
fn invalid_configs_are_code_7() {
    let cases = [
        json!({"cniVersion": "1.0.0", "name": "n"}),
        json!({"cniVersion": "1.0.0", "name": "n", "type": ""}),
        json!({"cniVersion": "1.0.0", "type": "fake"}),
        json!({"cniVersion": "1.0.0", "name": "", "type": "fake"}),
        json!({"cniVersion": "1.0.0", "name": "bad name", "type": "fake"}),
    ];
    for c in cases {
        let plugin = Fake::default();
        invoke(&plugin, &env_for("DEL"), c.to_string().as_bytes()).error(7);
        assert!(plugin.called().is_empty(), "{c}");
    }
}

#[test]
fn unknown_config_version_is_code_1_listing_supported() {
    let plugin = Fake::default();
    let err = invoke(&plugin, &env_for("ADD"), &conf("0.9.0")).error(1);
    assert_eq!(err["msg"], "incompatible CNI versions");
    let details = err["details"].as_str().unwrap();
    assert!(details.contains("\"0.9.0\"") && details.contains("\"1.1.0\""), "{err}");
    assert_eq!(err["cniVersion"], "1.1.0");
}

#[test]
fn unsupported_config_version_is_code_1_in_the_config_version() {
    let plugin = Fake { versions: vec![Version::V0_3_1, Version::V0_4_0], ..Fake::default() };
    let err = invoke(&plugin, &env_for("ADD"), &conf("1.0.0")).error(1);
    assert_eq!(err["cniVersion"], "1.0.0");
    assert_eq!(err["details"], "config is \"1.0.0\", plugin supports [\"0.3.1\" \"0.4.0\"]");
    assert!(plugin.called().is_empty());
}

#[test]
fn verbs_not_in_the_config_version_are_code_1() {
    let cases = [
        ("CHECK", &["0.1.0", "0.2.0", "0.3.0", "0.3.1"][..]),
        ("GC", &["0.1.0", "0.3.1", "0.4.0", "1.0.0"]),
        ("STATUS", &["0.2.0", "0.4.0", "1.0.0"]),
    ];
    for (cmd, versions) in cases {
        for v in versions {
            let plugin = Fake::default();
            let err = invoke(&plugin, &env_for(cmd), &conf(v)).error(1);
            assert_eq!(err["msg"], format!("config version does not allow {cmd}"));
            assert_eq!(err["cniVersion"], *v);
            assert!(plugin.called().is_empty());
        }
    }
}

struct FailingReader;
impl Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::other("stdin closed"))
    }
}

struct FailingWriter;
impl Write for FailingWriter {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::other("broken pipe"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn unreadable_stdin_is_code_5() {
    let plugin = Fake::default();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(&plugin, "", &env_for("ADD"), &mut FailingReader, &mut out, &mut err);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["code"], 5);
    assert!(v["msg"].as_str().unwrap().contains("stdin closed"));
}

#[test]
fn unwritable_stdout_exits_1_and_says_so_on_stderr() {
    let plugin = Fake::default();
    let mut err = Vec::new();
    let code = run(&plugin, "", &env_for("ADD"), &mut &conf("1.0.0")[..], &mut FailingWriter, &mut err);
    assert_eq!(code, 1);
    assert!(String::from_utf8(err).unwrap().contains("broken pipe"));
}

#[test]
fn process_env_reads_the_real_environment() {
    assert_eq!(ProcessEnv.var("PATH"), std::env::var("PATH").ok());
    assert_eq!(ProcessEnv.var("TWILL_TEST_SURELY_UNSET_1B3F"), None);
    let map: std::collections::HashMap<String, String> = [("K".to_string(), "v".to_string())].into();
    assert_eq!(map.var("K").as_deref(), Some("v"));
    assert_eq!(map.var("X"), None);
}
