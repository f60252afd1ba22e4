//! A fake plugin and an invocation harness with injected env and streams.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::cell::RefCell;
use std::collections::BTreeMap;

use cni_skel::{CmdArgs, Command, Plugin, run};
use cni_spec::{CniResult, Error, NetConf, Version};
use serde_json::{Value, json};

/// Records every call; answers with `result` / `fail`.
pub struct Fake {
    pub versions: Vec<Version>,
    pub result: CniResult,
    pub fail: Option<Error>,
    pub panic: bool,
    pub calls: RefCell<Vec<(Command, CmdArgs, NetConf)>>,
}

impl Default for Fake {
    fn default() -> Self {
        Fake {
            versions: Version::ALL.to_vec(),
            result: dual_stack(),
            fail: None,
            panic: false,
            calls: RefCell::new(Vec::new()),
        }
    }
}

impl Fake {
    fn record(&self, cmd: Command, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        assert!(!self.panic || cmd != Command::Add, "fake plugin panics on purpose");
        self.calls.borrow_mut().push((cmd, args.clone(), conf.clone()));
        self.fail.clone().map_or(Ok(()), Err)
    }

    pub fn called(&self) -> Vec<Command> {
        self.calls.borrow().iter().map(|c| c.0).collect()
    }

    pub fn last_args(&self) -> CmdArgs {
        self.calls.borrow().last().expect("a call").1.clone()
    }
}

impl Plugin for Fake {
    fn supported_versions(&self) -> &[Version] {
        &self.versions
    }
    fn add(&self, args: &CmdArgs, conf: &NetConf) -> Result<CniResult, Error> {
        self.record(Command::Add, args, conf)?;
        Ok(self.result.clone())
    }
    fn check(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        self.record(Command::Check, args, conf)
    }
    fn del(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        self.record(Command::Del, args, conf)
    }
    fn gc(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        self.record(Command::Gc, args, conf)
    }
    fn status(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        self.record(Command::Status, args, conf)
    }
}

pub fn dual_stack() -> CniResult {
    CniResult::from_json(&json!({
        "cniVersion": "1.1.0",
        "interfaces": [{"name": "eth0", "sandbox": "/run/netns/c1"}],
        "ips": [
            {"interface": 0, "address": "10.1.2.3/24", "gateway": "10.1.2.1"},
            {"interface": 0, "address": "fd00::3/64"}
        ],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.2.1", "table": 5}]
    }))
    .expect("valid result")
}

/// What one invocation produced.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout {:?}: {e}", self.stdout))
    }

    /// Asserts a failure with `code` and returns the error JSON.
    pub fn error(&self, code: u32) -> Value {
        assert_eq!(self.code, 1, "{self:?}");
        let v = self.json();
        assert_eq!(v["code"], code, "{v}");
        v
    }

    pub fn ok_empty(&self) {
        assert_eq!((self.code, self.stdout.as_str()), (0, ""), "{self:?}");
    }
}

pub fn env_for(cmd: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("CNI_COMMAND".to_string(), cmd.to_string());
    env.insert("CNI_CONTAINERID".to_string(), "c1".to_string());
    env.insert("CNI_NETNS".to_string(), "/run/netns/c1".to_string());
    env.insert("CNI_IFNAME".to_string(), "eth0".to_string());
    env.insert("CNI_PATH".to_string(), "/opt/cni/bin::/usr/lib/cni".to_string());
    env
}

pub fn conf(version: &str) -> Vec<u8> {
    json!({"cniVersion": version, "name": "podnet", "type": "fake"}).to_string().into_bytes()
}

pub fn invoke(plugin: &Fake, env: &BTreeMap<String, String>, stdin: &[u8]) -> Outcome {
    let mut input = stdin;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(plugin, "fake plugin v0", env, &mut input, &mut out, &mut err);
    Outcome {
        code,
        stdout: String::from_utf8(out).expect("utf-8 stdout"),
        stderr: String::from_utf8(err).expect("utf-8 stderr"),
    }
}
