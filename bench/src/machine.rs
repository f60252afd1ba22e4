//! Facts about the machine and the software under test, for the report's header.

use std::path::Path;
use std::process::Command;

/// What the numbers were measured on.
#[derive(Clone, Debug, Default)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub memory: String,
    pub kernel: String,
    pub os: String,
    pub reference: String,
    pub iperf3: String,
    pub commit: String,
    /// /proc/loadavg's 1/5/15-minute averages when the run started.
    pub load: String,
}

impl Machine {
    /// Reads /proc, /etc/os-release, dpkg and git; unknown facts say so.
    pub fn probe(workspace: &Path) -> Machine {
        let cpuinfo = read("/proc/cpuinfo");
        Machine {
            nproc: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            cpu: field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
            memory: field(&read("/proc/meminfo"), "MemTotal").map(|m| kib_to_gib(&m)).unwrap_or_default(),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            os: os_release(&read("/etc/os-release")),
            reference: output("dpkg-query", &["-W", "-f", "${Version}", "containernetworking-plugins"])
                .map(|v| format!("containernetworking-plugins {v} (/usr/lib/cni)"))
                .unwrap_or_else(|| "containernetworking-plugins (version unknown)".into()),
            iperf3: output("iperf3", &["--version"])
                .and_then(|v| v.lines().next().map(str::to_string))
                .unwrap_or_default(),
            commit: commit(workspace),
            load: loadavg(),
        }
    }
}

/// The 1/5/15-minute load averages, e.g. `0.52 0.40 0.31`.
pub fn loadavg() -> String {
    read("/proc/loadavg").split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The value of the first `key : value` line.
pub fn field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_string())
}

/// `23905456 kB` → `22.8 GiB`.
pub fn kib_to_gib(value: &str) -> String {
    let kib: f64 = value.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0.0);
    format!("{:.1} GiB", kib / 1024.0 / 1024.0)
}

fn os_release(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `abc1234` plus `+ uncommitted changes` when the tree is dirty.
fn commit(workspace: &Path) -> String {
    let dir = workspace.display().to_string();
    let Some(head) = output("git", &["-C", &dir, "rev-parse", "--short", "HEAD"]) else {
        return "unknown".into();
    };
    let dirty = output("git", &["-C", &dir, "status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    if dirty { format!("{head} + uncommitted changes") } else { head }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC\nMemTotal:       23905456 kB\n";
        assert_eq!(field(text, "model name").as_deref(), Some("AMD EPYC"));
        assert_eq!(kib_to_gib(&field(text, "MemTotal").unwrap()), "22.8 GiB");
        assert_eq!(
            os_release("NAME=x\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
            "Debian GNU/Linux 12 (bookworm)"
        );
    }
}
