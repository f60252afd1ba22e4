//! `twill lab down`: stops what the lab started and removes what it made, in the order that
//! lets each part leave cleanly — pods' servers, pods' attachments (CNI DEL frees their
//! addresses wherever IPAM keeps them), the agents (SIGTERM: they leave the cluster while the
//! datastore is still up), the remaining processes, then every `PREFIX-*` namespace and the
//! state directory.
//!
//! It works from whatever is left: with no or unreadable state it still removes every
//! namespace named like the lab's. Processes are only ever signalled by the pid the lab
//! recorded (and only while that pid still names the process it started); anything else
//! still inside a lab namespace is reported, not killed.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use super::names::Names;
use super::pods;
use super::process::{self, Proc};
use super::state::{self, LabState, StateDir};

/// How long agents get to leave the cluster before SIGKILL.
const AGENT_GRACE: Duration = Duration::from_secs(10);
const OTHER_GRACE: Duration = Duration::from_secs(3);

pub fn run(names: &Names) -> Result<()> {
    let sd = StateDir::lock(names, true)?;
    down(names, &sd)
}

/// Tears the lab down with its state directory locked by the caller.
pub fn down(names: &Names, sd: &StateDir) -> Result<()> {
    let mut errors: Vec<anyhow::Error> = Vec::new();
    let lab = match state::load(&sd.dir) {
        Ok(s) => s,
        Err(e) => {
            errors.push(e.context("the lab's state is unreadable; removing its namespaces anyway"));
            None
        }
    };
    let mut stopped = 0;
    if let Some(lab) = &lab {
        stopped = stop_processes(&sd.dir, lab, &mut errors);
    }
    let namespaces = lab_namespaces(names, lab.as_ref(), &mut errors);
    report_strangers(&namespaces);
    for name in &namespaces {
        if let Err(e) = netns::delete_named(name) {
            errors.push(anyhow::Error::new(e).context(format!("remove netns {name}")));
        }
    }
    if let Err(e) = std::fs::remove_dir_all(&sd.dir) {
        errors.push(anyhow::Error::new(e).context(format!("remove {}", sd.dir.display())));
    }
    println!(
        "lab {} down: stopped {stopped} processes, removed {} namespaces and {}",
        names.prefix(),
        namespaces.len(),
        sd.dir.display()
    );
    match errors.len() {
        0 => Ok(()),
        n => {
            for e in &errors {
                eprintln!("twill lab down: {e:#}");
            }
            anyhow::bail!("{n} teardown step(s) failed (see above); what could be removed was removed")
        }
    }
}

/// Stops every recorded process in leave order; returns how many were running.
fn stop_processes(dir: &Path, lab: &LabState, errors: &mut Vec<anyhow::Error>) -> usize {
    let running = lab.processes().iter().filter(|p| p.is_running()).count();
    let servers: Vec<&Proc> = lab.pods.values().filter_map(|p| p.server.as_ref()).collect();
    errors.extend(process::stop_all(&servers, OTHER_GRACE));
    errors.extend(pods::detach_all(dir, lab));
    let agents: Vec<&Proc> = lab.nodes.iter().filter_map(|n| n.agent.as_ref()).collect();
    errors.extend(process::stop_all(&agents, AGENT_GRACE));
    let birds = lab.birds.iter().filter_map(|b| b.proc.as_ref());
    let rest: Vec<&Proc> = lab
        .outside_server
        .iter()
        .chain(lab.etcd.iter().flat_map(|e| e.members.iter().filter_map(|m| m.proc.as_ref())))
        .chain(birds)
        .collect();
    errors.extend(process::stop_all(&rest, OTHER_GRACE));
    running
}

/// The namespaces the state recorded plus every `/run/netns` entry named like the lab's.
fn lab_namespaces(names: &Names, lab: Option<&LabState>, errors: &mut Vec<anyhow::Error>) -> Vec<String> {
    let mut found: BTreeSet<String> = lab.map(|l| l.netns.iter().cloned().collect()).unwrap_or_default();
    match existing_netns(names) {
        Ok(existing) => found.extend(existing),
        Err(e) => errors.push(e),
    }
    found.into_iter().collect()
}

/// Every `/run/netns` entry named like the lab's.
pub fn existing_netns(names: &Names) -> Result<Vec<String>> {
    match std::fs::read_dir(netns::NETNS_RUN_DIR) {
        Ok(entries) => Ok(entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| names.owns_netns(n))
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("list {}", netns::NETNS_RUN_DIR))),
    }
}

/// Warns about processes still inside the lab's namespaces (a shell someone opened with
/// `ip netns exec`, a process of a crashed lab whose pid was never recorded).
fn report_strangers(namespaces: &[String]) {
    let inodes: BTreeSet<(u64, u64)> = namespaces
        .iter()
        .filter_map(|n| std::fs::metadata(netns::named_path(n)).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    if inodes.is_empty() {
        return;
    }
    for (pid, comm) in processes_in(&inodes).unwrap_or_default() {
        eprintln!(
            "twill lab down: pid {pid} ({comm}) is still inside a lab namespace but not recorded in the lab's \
             state; not killing it (end it yourself if it is yours)"
        );
    }
}

fn processes_in(inodes: &BTreeSet<(u64, u64)>) -> Result<Vec<(u32, String)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").context("list /proc")?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(meta) = std::fs::metadata(entry.path().join("ns/net")) else { continue };
        if inodes.contains(&(meta.dev(), meta.ino())) {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            found.push((pid, comm.trim().to_string()));
        }
    }
    Ok(found)
}
