//! The invocation's environment: `CNI_ARGS` and every other `CNI_*` variable a runtime sets,
//! with a configuration on stdin, through the plugin skeleton. Input: NUL-separated
//! CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH, stdin.
//!
//! Beyond no panic: `CNI_ARGS` splits into pairs that join back to the same text; the skeleton
//! exits 0 or 1 and prints valid JSON (a result in the config's version, or a spec error);
//! a plugin method is called only with a valid container id, interface name and the parsed
//! `CNI_ARGS`.
#![no_main]

use std::cell::RefCell;
use std::collections::BTreeMap;

use cni_skel::{CmdArgs, Command, Plugin};
use cni_spec::{CniResult, Error, NetConf, Version, parse_cni_args};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use twill_fuzz::{fields, text};

const VARS: [&str; 6] = ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"];

fuzz_target!(|data: &[u8]| {
    let f = fields(data, VARS.len() + 1);
    cni_args(&text(f[4]));
    let env: BTreeMap<String, String> = VARS.iter().zip(&f).map(|(k, v)| (k.to_string(), text(v))).collect();
    skel(&env, f[VARS.len()]);
});

fn cni_args(raw: &str) {
    let Ok(pairs) = parse_cni_args(raw) else { return };
    for (k, v) in &pairs {
        assert!(!k.is_empty() && !k.contains([';', '=']) && !v.contains([';', '=']), "{k:?}={v:?}");
    }
    let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(joined.join(";"), raw, "CNI_ARGS pairs do not join back");
}

/// Answers every verb; ADD echoes `prevResult` (or an empty result).
#[derive(Default)]
struct Recorder {
    calls: RefCell<Vec<CmdArgs>>,
}

impl Recorder {
    fn record(&self, args: &CmdArgs) {
        if args.command != Command::Gc && args.command != Command::Status {
            cni_spec::validate_container_id(&args.container_id).expect("skel checked the container id");
            cni_spec::validate_ifname(&args.ifname).expect("skel checked the ifname");
            assert_eq!(parse_cni_args(&args.raw_args).expect("skel checked CNI_ARGS"), args.args);
        }
        self.calls.borrow_mut().push(args.clone());
    }
}

impl Plugin for Recorder {
    fn add(&self, args: &CmdArgs, conf: &NetConf) -> Result<CniResult, Error> {
        self.record(args);
        Ok(conf.prev_result()?.unwrap_or_default())
    }
    fn check(&self, args: &CmdArgs, _conf: &NetConf) -> Result<(), Error> {
        self.record(args);
        Ok(())
    }
    fn del(&self, args: &CmdArgs, _conf: &NetConf) -> Result<(), Error> {
        self.record(args);
        Ok(())
    }
    fn gc(&self, args: &CmdArgs, _conf: &NetConf) -> Result<(), Error> {
        self.record(args);
        Ok(())
    }
    fn status(&self, args: &CmdArgs, _conf: &NetConf) -> Result<(), Error> {
        self.record(args);
        Ok(())
    }
}

fn skel(env: &BTreeMap<String, String>, stdin: &[u8]) {
    let plugin = Recorder::default();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = cni_skel::run(&plugin, "fuzz", env, &mut &stdin[..], &mut out, &mut err);
    let called = plugin.calls.borrow().len();
    assert!(called <= 1);
    let printed: Option<Value> =
        (!out.is_empty()).then(|| serde_json::from_slice(&out).expect("stdout is JSON"));
    match code {
        0 => {
            let command = Command::parse(&env["CNI_COMMAND"]).expect("success needs a verb");
            assert_eq!(called == 1, command != Command::Version);
            if command == Command::Add {
                let result = printed.expect("ADD prints a result");
                let version = result["cniVersion"].as_str().map(Version::parse);
                assert!(matches!(version, Some(Ok(_))), "result has a known cniVersion: {result}");
                CniResult::from_json(&result).expect("the printed result reads back");
            }
        }
        1 => {
            let e = printed.expect("failure prints an error");
            assert!(e["code"].as_u64().is_some_and(|c| c > 0), "error has a code: {e}");
            assert!(e["msg"].as_str().is_some_and(|m| !m.is_empty()), "error has a message: {e}");
            assert!(e["cniVersion"].is_string(), "error has a cniVersion: {e}");
        }
        other => panic!("exit code {other}"),
    }
}
