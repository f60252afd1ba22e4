//! Test fixtures shared by the plugins' unit tests: configurations written as JSON, as a
//! runtime passes them on stdin, and the arguments of one invocation.

use cni_skel::{CmdArgs, Command};
use cni_spec::NetConf;
use serde_json::Value;

/// `base` with each top-level key of the object `extra` set to `extra`'s value.
pub fn merged(mut base: Value, extra: &Value) -> Value {
    for (k, v) in extra.as_object().expect("extra must be a JSON object") {
        base[k] = v.clone();
    }
    base
}

/// `v` read as a network configuration.
pub fn net_conf(v: &Value) -> NetConf {
    NetConf::parse(&serde_json::to_vec(v).expect("serialise JSON")).expect("a parsable NetConf")
}

/// An ADD of container `c` on `eth0` with `cni_args` as CNI_ARGS.
pub fn cmd_args(cni_args: &[(&str, &str)]) -> CmdArgs {
    let mut a = CmdArgs::new(Command::Add);
    a.container_id = "c".into();
    a.ifname = "eth0".into();
    a.args = cni_args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    a
}
