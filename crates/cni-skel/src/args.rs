//! The invocation's parameters: `CNI_*` variables read through [`Env`].

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use cni_spec::{Error, parse_cni_args, validate_container_id, validate_ifname};

use crate::command::Command;

/// Where `CNI_*` variables come from; injected so tests never touch the
/// process environment.
pub trait Env {
    /// The variable's value, `None` when unset.
    fn var(&self, key: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, key: &str) -> Option<String> {
        self.get(key).cloned()
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, key: &str) -> Option<String> {
        self.get(key).cloned()
    }
}

/// One invocation's parameters, as passed to the [`crate::Plugin`] methods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmdArgs {
    /// The verb.
    pub command: Command,
    /// `CNI_CONTAINERID`; empty for GC and STATUS.
    pub container_id: String,
    /// `CNI_NETNS`, when given. Not opened or checked here: a plugin that
    /// needs the namespace validates it.
    pub netns: Option<PathBuf>,
    /// `CNI_IFNAME`; empty for GC and STATUS.
    pub ifname: String,
    /// `CNI_ARGS` split into pairs.
    pub args: Vec<(String, String)>,
    /// `CNI_ARGS` as given.
    pub raw_args: String,
    /// `CNI_PATH` split on `:`, empty entries dropped.
    pub path: Vec<PathBuf>,
    /// The configuration read from stdin.
    pub stdin: Vec<u8>,
}

impl CmdArgs {
    /// Empty parameters for `command`; handy for tests and delegation.
    pub fn new(command: Command) -> CmdArgs {
        CmdArgs {
            command,
            container_id: String::new(),
            netns: None,
            ifname: String::new(),
            args: Vec::new(),
            raw_args: String::new(),
            path: Vec::new(),
            stdin: Vec::new(),
        }
    }

    /// The value of `key` in `CNI_ARGS` (the last one if repeated).
    pub fn arg(&self, key: &str) -> Option<&str> {
        self.args.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Reads and checks the variables `command` needs: every missing one is
    /// named in a single code 4 error; a bad container id or interface name
    /// is rejected with the reference's codes; bad `CNI_ARGS` is code 4 for
    /// ADD, CHECK and DEL.
    pub fn from_env(command: Command, env: &dyn Env) -> Result<CmdArgs, Error> {
        let get = |key: &str| env.var(key).unwrap_or_default();
        let missing: Vec<&str> =
            command.required_vars().iter().copied().filter(|key| get(key).is_empty()).collect();
        if !missing.is_empty() {
            return Err(Error::invalid_env(format!(
                "required env variables [{}] missing",
                missing.join(",")
            )));
        }
        let container_id = get("CNI_CONTAINERID");
        let ifname = get("CNI_IFNAME");
        if command.is_attachment() {
            validate_container_id(&container_id)?;
            validate_ifname(&ifname)?;
        }
        let raw_args = get("CNI_ARGS");
        let netns = Some(get("CNI_NETNS")).filter(|s| !s.is_empty()).map(PathBuf::from);
        Ok(CmdArgs {
            command,
            container_id,
            netns,
            ifname,
            // CNI_ARGS belongs to ADD/CHECK/DEL; other verbs ignore it.
            args: if command.is_attachment() { parse_cni_args(&raw_args)? } else { Vec::new() },
            raw_args,
            path: split_path(&get("CNI_PATH")),
            stdin: Vec::new(),
        })
    }
}

fn split_path(s: &str) -> Vec<PathBuf> {
    s.split(':').filter(|p| !p.is_empty()).map(PathBuf::from).collect()
}
