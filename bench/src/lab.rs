//! Everything the bench creates on the machine: named network namespaces `twb-<pid>-...` and
//! one temporary directory. The lab records each namespace it makes and removes whatever is
//! still there when it is dropped — after success, on an error, or after Ctrl-C. Namespaces
//! left by a bench process that no longer exists (killed with SIGKILL) are swept at start.
//!
//! Nothing outside these namespaces is touched: all bridges, veths, firewall rules and qdiscs
//! the plugins create live in a fake host namespace that goes away with the lab.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use netns::NetNs;

/// Prefix of every namespace the bench creates.
pub const PREFIX: &str = "twb-";

/// The bench's namespaces and scratch directory.
pub struct Lab {
    pid: u32,
    dir: PathBuf,
    live: Mutex<BTreeSet<String>>,
}

impl Lab {
    /// Sweeps stale namespaces of dead bench processes and creates the scratch directory.
    pub fn new() -> Result<Lab> {
        for name in sweep_stale()? {
            eprintln!("twill-bench: removed stale namespace {name} of an earlier run");
        }
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("twb-{pid}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        Ok(Lab { pid, dir, live: Mutex::new(BTreeSet::new()) })
    }

    /// The scratch directory (bin dirs, IPAM data, result caches).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `twb-<pid>-<suffix>`.
    pub fn ns_name(&self, suffix: &str) -> String {
        format!("{PREFIX}{}-{suffix}", self.pid)
    }

    /// Creates the named namespace `twb-<pid>-<suffix>` with loopback up and records it.
    pub fn create_ns(&self, suffix: &str) -> Result<(String, NetNs)> {
        let name = self.ns_name(suffix);
        let ns = netns::create_named(&name).with_context(|| format!("create netns {name}"))?;
        self.registry().insert(name.clone());
        let up = nl::Handle::in_netns(&ns).and_then(|h| match h.link_get("lo")? {
            Some(lo) => h.link_set_up(lo.index, true),
            None => Ok(()),
        });
        if let Err(e) = up {
            self.remove_ns(&name);
            return Err(e).with_context(|| format!("set lo up in {name}"));
        }
        Ok((name, ns))
    }

    /// Deletes a namespace made by [`Lab::create_ns`]; reports but does not fail.
    pub fn remove_ns(&self, name: &str) {
        if let Err(e) = netns::delete_named(name) {
            eprintln!("twill-bench: remove netns {name}: {e}");
        }
        self.registry().remove(name);
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let left: Vec<String> = self.registry().iter().cloned().collect();
        for name in left {
            self.remove_ns(&name);
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("twill-bench: remove {}: {e}", self.dir.display());
        }
    }
}

/// Deletes `twb-<pid>-*` namespaces whose process is gone; returns their names.
pub fn sweep_stale() -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(netns::NETNS_RUN_DIR) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).context("list /run/netns"),
    };
    let mut removed = Vec::new();
    for name in entries.flatten().filter_map(|e| e.file_name().into_string().ok()) {
        let Some(pid) = owner_pid(&name) else { continue };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        netns::delete_named(&name).with_context(|| format!("remove stale netns {name}"))?;
        removed.push(name);
    }
    let _ = remove_stale_dirs();
    Ok(removed)
}

/// Scratch directories `twb-<pid>` of dead runs.
fn remove_stale_dirs() -> std::io::Result<()> {
    for entry in std::fs::read_dir(std::env::temp_dir())?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.strip_prefix(PREFIX).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            std::fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

/// The pid in `twb-<pid>-...`.
pub fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_parses_only_bench_names() {
        assert_eq!(owner_pid("twb-1234-lat-tw-host"), Some(1234));
        assert_eq!(owner_pid("twb-x-1"), None);
        assert_eq!(owner_pid("twt-1234-a"), None);
    }
}
