//! `twill lab etcd stop|kill|start|freeze|thaw [--member N]`: outages of the lab's datastore
//! on demand — a member stopped (SIGTERM) or killed (SIGKILL), started again with its data,
//! or frozen (SIGSTOP: its sockets stay open and nothing answers) and thawed.

use std::time::Duration;

use anyhow::{Result, bail};
use clap::Subcommand;
use netns::NetNs;
use nix::sys::signal::Signal;

use super::names::Names;
use super::process::{self, Proc};
use super::state::{LabState, StateDir};
use super::{agent, etcd};

#[derive(Subcommand, Debug)]
pub enum EtcdCommand {
    /// Stop a member with SIGTERM.
    Stop(Member),
    /// Kill a member with SIGKILL (a crash).
    Kill(Member),
    /// Start a stopped or killed member again with its data; waits until the cluster answers.
    Start(Member),
    /// Freeze a member (SIGSTOP): connections stay open, nothing answers.
    Freeze(Member),
    /// Thaw a frozen member (SIGCONT).
    Thaw(Member),
}

#[derive(clap::Args, Debug)]
pub struct Member {
    /// Which member, 1-based.
    #[arg(long, default_value_t = 1)]
    pub member: u8,
}

fn member_proc(state: &LabState, i: u8) -> Result<Option<Proc>> {
    etcd::member_netns(state, i)?;
    Ok(state.etcd.as_ref().and_then(|e| e.members.get(usize::from(i - 1))).and_then(|m| m.proc.clone()))
}

pub fn run(names: &Names, cmd: &EtcdCommand) -> Result<()> {
    let sd = StateDir::lock(names, false)?;
    let mut state = sd.load()?;
    let (verb, m) = match cmd {
        EtcdCommand::Stop(m) => ("stopped", m),
        EtcdCommand::Kill(m) => ("killed", m),
        EtcdCommand::Start(m) => ("started", m),
        EtcdCommand::Freeze(m) => ("frozen", m),
        EtcdCommand::Thaw(m) => ("thawed", m),
    };
    let i = m.member.max(1);
    let proc = member_proc(&state, i)?;
    match cmd {
        EtcdCommand::Stop(_) => stop(proc.as_ref(), Signal::SIGTERM)?,
        EtcdCommand::Kill(_) => stop(proc.as_ref(), Signal::SIGKILL)?,
        EtcdCommand::Freeze(_) => signal(proc.as_ref(), Signal::SIGSTOP)?,
        EtcdCommand::Thaw(_) => signal(proc.as_ref(), Signal::SIGCONT)?,
        EtcdCommand::Start(_) => start(&sd, &mut state, i, proc.as_ref())?,
    }
    println!("etcd member {i} {verb}");
    Ok(())
}

fn running(proc: Option<&Proc>) -> Result<&Proc> {
    match proc.filter(|p| p.is_running()) {
        Some(p) => Ok(p),
        None => bail!("that etcd member is not running"),
    }
}

fn stop(proc: Option<&Proc>, sig: Signal) -> Result<()> {
    let p = running(proc)?;
    // A frozen process would not act on SIGTERM.
    p.signal(Signal::SIGCONT)?;
    match sig {
        Signal::SIGKILL => p.signal(Signal::SIGKILL),
        _ => process::stop_all(&[p], Duration::from_secs(10)).into_iter().next().map_or(Ok(()), Err),
    }
}

fn signal(proc: Option<&Proc>, sig: Signal) -> Result<()> {
    running(proc)?.signal(sig)
}

fn start(sd: &StateDir, state: &mut LabState, i: u8, old: Option<&Proc>) -> Result<()> {
    if old.is_some_and(|p| p.is_running()) {
        bail!("etcd member {i} is already running");
    }
    let netns = etcd::member_netns(state, i)?;
    let ns = NetNs::open(netns::named_path(&netns))?;
    let proc = etcd::start(&ns, &sd.dir, i, state.options.etcd_members)?;
    if let Some(m) = state.etcd.as_mut().and_then(|e| e.members.get_mut(usize::from(i - 1))) {
        m.proc = Some(proc.clone());
    }
    sd.save(state)?;
    etcd::wait_ready(&ns, &agent::datastore_conf(&sd.dir, state)?, &[&proc])
}
