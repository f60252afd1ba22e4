//! `twill lab exec PLACE -- CMD...`: runs a command inside a pod's (or a node's, the outside
//! host's, ...) namespace with the caller's terminal, and passes its exit code through.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use anyhow::{Context, Result, bail};
use netns::NetNs;

use super::names::Names;
use super::state;
use super::target::Target;

/// Runs `argv` inside `target`; returns the exit code to leave with (128+N for signal N).
pub fn run(names: &Names, target: &Target, argv: &[String]) -> Result<i32> {
    let Some((program, args)) = argv.split_first() else {
        bail!("nothing to run: twill lab exec PLACE -- CMD...")
    };
    let state = state::load_running(names)?;
    let ns = NetNs::open(netns::named_path(&target.netns(&state, names)?))?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    ns.spawn_inside(&mut cmd);
    let status = cmd.status().with_context(|| format!("run {program} in {target}"))?;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
