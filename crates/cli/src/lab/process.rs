//! Processes the lab starts inside its namespaces (twilld, etcd, the pods' servers), recorded
//! by pid *and* start time: a later `twill lab` invocation signals a recorded pid only while
//! it still names the process the lab started, never a stranger that reused the number.

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use netns::NetNs;
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// A process the lab started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    pub pid: i32,
    /// Field 22 of `/proc/PID/stat` (clock ticks after boot) when it was started.
    pub start_time: u64,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

/// Starts `program` inside `ns`, detached from the caller's terminal (its own process group,
/// so a Ctrl-C meant for a later `twill` command does not reach it), output appended to `log`.
pub fn spawn_in<I, S>(ns: &NetNs, program: &Path, args: I, log: &Path) -> Result<Proc>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("open log {}", log.display()))?;
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out).process_group(0);
    ns.spawn_inside(&mut cmd);
    let child = cmd
        .spawn()
        .with_context(|| format!("start {} in netns {}", program.display(), ns.path().display()))?;
    let pid = i32::try_from(child.id()).context("pid out of range")?;
    let start_time = start_time(pid).with_context(|| format!("read the start time of pid {pid}"))?;
    Ok(Proc { pid, start_time, log: log.to_path_buf() })
}

impl Proc {
    /// True while the recorded process exists and is not a zombie. Reaps it when it is a child
    /// of this process.
    pub fn is_running(&self) -> bool {
        let pid = Pid::from_raw(self.pid);
        // Only succeeds for our own children (`twill lab demo`); harmless otherwise.
        let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
        match stat_fields(self.pid) {
            Some(f) => f.state != 'Z' && f.start_time == self.start_time,
            None => false,
        }
    }

    /// Sends `signal` if the process is still the one the lab started.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        if !self.is_running() {
            return Ok(());
        }
        match kill(Pid::from_raw(self.pid), signal) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("send {signal} to pid {}", self.pid)),
        }
    }

    /// The end of its log, for error messages: `its log PATH ends:\n...`.
    pub fn log_excerpt(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        if all.is_empty() {
            return format!("its log {} is empty", self.log.display());
        }
        format!("its log {} ends:\n{}", self.log.display(), all[all.len().saturating_sub(20)..].join("\n"))
    }
}

/// `name` on `PATH`, or an error saying which package provides it.
pub fn find_program(name: &str, package: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file()).with_context(
        || {
            format!(
                "{name} not found on PATH (Debian package {package}; scripts/install-deps.sh installs it)"
            )
        },
    )
}

/// Stops every process: SIGTERM, up to `grace` to exit, then SIGKILL. Collects errors and
/// carries on, so one stubborn process does not keep the others alive.
pub fn stop_all(procs: &[&Proc], grace: Duration) -> Vec<anyhow::Error> {
    let mut errors = Vec::new();
    for p in procs {
        if let Err(e) = p.signal(Signal::SIGTERM) {
            errors.push(e);
        }
    }
    if !wait_all_gone(procs, grace) {
        for p in procs.iter().filter(|p| p.is_running()) {
            if let Err(e) = p.signal(Signal::SIGKILL) {
                errors.push(e);
            }
        }
        if !wait_all_gone(procs, Duration::from_secs(5)) {
            for p in procs.iter().filter(|p| p.is_running()) {
                errors.push(anyhow::anyhow!("pid {} survived SIGKILL", p.pid));
            }
        }
    }
    errors
}

fn wait_all_gone(procs: &[&Proc], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if procs.iter().all(|p| !p.is_running()) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct StatFields {
    state: char,
    start_time: u64,
}

fn start_time(pid: i32) -> Option<u64> {
    stat_fields(pid).map(|f| f.start_time)
}

fn stat_fields(pid: i32) -> Option<StatFields> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// `/proc/PID/stat`: `pid (comm) state ppid ...`; comm may hold spaces and parentheses, so
/// fields are counted after the last `)`. State is field 3, starttime field 22.
fn parse_stat(text: &str) -> Option<StatFields> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some(StatFields { state, start_time })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_odd_command_names() {
        let line = "4242 (tw (il) d) S 1 4242 4242 0 -1 4194560 99 0 0 0 1 2 0 0 20 0 3 0 123456 1000 10";
        let f = parse_stat(line).unwrap();
        assert_eq!((f.state, f.start_time), ('S', 123456));
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn the_current_process_is_running_and_a_wrong_start_time_is_not() {
        let me = i32::try_from(std::process::id()).unwrap();
        let proc = Proc { pid: me, start_time: start_time(me).unwrap(), log: PathBuf::new() };
        assert!(proc.is_running());
        assert!(!Proc { start_time: proc.start_time + 1, ..proc.clone() }.is_running());
    }
}
