//! IPAM delegation: an interface plugin hands its whole config to the IPAM plugin named in
//! `ipam.type`, with the same environment, as the spec describes. When the binary found on
//! CNI_PATH for that type is this very executable (twill's own host-local or static), the
//! plugin runs in-process instead of paying another process start; otherwise it is executed,
//! so any IPAM plugin (the reference host-local, whereabouts...) works under twill's plugins.

use std::path::{Path, PathBuf};

use cni_exec::{Exec, InvokeArgs, RawExec};
use cni_skel::{CmdArgs, Command};
use cni_spec::{CniResult, Error, ErrorCode, NetConf};

use crate::undo::Undo;

/// Whether the config delegates to an IPAM plugin (an `ipam` section with a `type`).
pub fn has_ipam(conf: &NetConf) -> bool {
    conf.ipam_type().is_some_and(|t| !t.is_empty())
}

/// Runs the IPAM plugin's ADD and returns its result in the config's version.
pub fn ipam_add(args: &CmdArgs, conf: &NetConf) -> Result<CniResult, Error> {
    let out = run(args, conf, Command::Add)?;
    match out {
        Outcome::InProcess(Some(result)) => Ok(result),
        Outcome::InProcess(None) => Err(Error::internal("ipam plugin returned no result")),
        Outcome::Output(bytes) => parse_result(&bytes, conf),
    }
}

/// IPAM ADD for an interface plugin: registers the release with `undo` first, so that a
/// result without addresses (an error: there is nothing to configure) is released too.
pub fn ipam_add_with_undo<'a>(
    args: &'a CmdArgs,
    conf: &'a NetConf,
    undo: &mut Undo<'a>,
) -> Result<CniResult, Error> {
    let ipam = ipam_add(args, conf)?;
    undo.push("release addresses", || ipam_del(args, conf));
    if ipam.ips.is_empty() {
        return Err(Error::internal("IPAM plugin returned no IP configuration"));
    }
    Ok(ipam)
}

/// The config's `dns` replaces IPAM's only when it says something, so IPAM may provide it.
pub fn prefer_conf_dns(result: &mut CniResult, conf: &NetConf) {
    if let Some(dns) = conf.dns.clone().filter(|d| !d.is_empty()) {
        result.dns = dns;
    }
}

/// Runs the IPAM plugin's DEL.
pub fn ipam_del(args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
    run(args, conf, Command::Del).map(drop)
}

/// Runs the IPAM plugin's CHECK.
pub fn ipam_check(args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
    run(args, conf, Command::Check).map(drop)
}

/// Forwards GC (spec 1.1.0: plugins forward GC and STATUS to their IPAM delegate).
pub fn ipam_gc(args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
    run(args, conf, Command::Gc).map(drop)
}

/// Forwards STATUS.
pub fn ipam_status(args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
    run(args, conf, Command::Status).map(drop)
}

enum Outcome {
    InProcess(Option<CniResult>),
    Output(Vec<u8>),
}

fn run(args: &CmdArgs, conf: &NetConf, command: Command) -> Result<Outcome, Error> {
    let ipam_type = conf
        .ipam_type()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::new(ErrorCode::InvalidConfig, "ipam: missing \"type\""))?;
    let exe = RawExec::default()
        .find(ipam_type, &args.path)
        .map_err(|e| Error::new(ErrorCode::InvalidConfig, e.to_string()))?;
    if runs_in_process(&exe)
        && let Some(plugin) = crate::plugin_by_name(ipam_type)
    {
        let sub = CmdArgs { command, ..args.clone() };
        return match command {
            Command::Add => plugin.add(&sub, conf).map(|r| Outcome::InProcess(Some(r))),
            Command::Check => plugin.check(&sub, conf).map(|()| Outcome::InProcess(None)),
            Command::Del => plugin.del(&sub, conf).map(|()| Outcome::InProcess(None)),
            Command::Gc => plugin.gc(&sub, conf).map(|()| Outcome::InProcess(None)),
            Command::Status => plugin.status(&sub, conf).map(|()| Outcome::InProcess(None)),
            Command::Version => Ok(Outcome::InProcess(None)),
        };
    }
    let invoke = InvokeArgs {
        command: command.as_str(),
        container_id: args.container_id.clone(),
        netns: args.netns.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        ifname: args.ifname.clone(),
        args: args.args.clone(),
        path: args.path.clone(),
    };
    RawExec::default().exec(&exe, &args.stdin, &invoke).map(Outcome::Output).map_err(|e| match e {
        cni_exec::Error::Plugin(inner) => inner,
        other => Error::new(ErrorCode::Io, format!("ipam plugin {ipam_type}: {other}")),
    })
}

fn parse_result(bytes: &[u8], conf: &NetConf) -> Result<CniResult, Error> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Error::decode(format!("decode ipam result: {e}")))?;
    if value.get("cniVersion").is_some() {
        CniResult::from_json(&value)
    } else {
        CniResult::from_json_as(&value, conf.version()?)
    }
}

fn file_id(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

/// Whether `exe` (through any symlink) is a binary of this very build of twill's node-local
/// plugins: the running executable itself, or the `twill-cni` installed beside the running
/// `twill-cni-cluster` (`twill install` puts both binaries of one build side by side; ADR 0014).
pub(crate) fn runs_in_process(exe: &Path) -> bool {
    let Ok(me) = std::env::current_exe() else { return false };
    let target = file_id(exe);
    if target.is_none() {
        return false;
    }
    let sibling: PathBuf = me.with_file_name(crate::BINARY);
    target == file_id(&me) || target == file_id(&sibling)
}
