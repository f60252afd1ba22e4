//! cni-skel: the entry point of a CNI plugin.
//!
//! [`run`] reads the `CNI_*` variables through an injected [`Env`] and the
//! configuration from stdin, checks them as the reference skel does (which
//! variables each verb needs, the container id and interface name, the
//! network name, the configuration's `cniVersion` against the plugin's
//! supported versions and against the verb: CHECK needs 0.4.0, GC and
//! STATUS 1.1.0), then calls the matching [`Plugin`] method. ADD results are
//! written in the configuration's `cniVersion`; every failure becomes a spec
//! error JSON on stdout and exit code 1. Nothing here touches namespaces:
//! `CNI_NETNS` is handed to the plugin as a path.
//!
//! A plugin binary's `main` is `std::process::exit(cni_skel::run_process(&MyPlugin, ABOUT))`.
#![forbid(unsafe_code)]

mod args;
mod command;
mod plugin;
mod run;

pub use args::{CmdArgs, Env, ProcessEnv};
pub use command::Command;
pub use plugin::Plugin;
pub use run::{run, run_process};
