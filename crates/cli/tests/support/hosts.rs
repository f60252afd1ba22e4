//! "Hosts" for following docs/deploy.md on one machine: each is a network namespace plugged
//! into a bridge the test creates (in a switch namespace of its own) with `eth0` at its
//! address, plus a private mount namespace — held open by a `sleep` this fixture starts —
//! where `/etc`, `/var`, `/opt`, `/usr/local` and `/run` are overlays whose writes land in the
//! host's own temp dir (the real ones are never written), and `/var/lib/containerd` and
//! `/var/lib/containers` are plain directories (container storage cannot sit on an overlay).
//! Commands run there through `nsenter --target HOLDER --mount --net`.
//!
//! Teardown ends, by pid, every process living in a host's mount namespace (all of them were
//! started by the test, directly or through the services it started), then the holders, then
//! removes the namespaces and directories — also after a panic.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use testkit::TestNs;

/// Mounts the host's filesystem view, then holds the mount namespace open.
const HOLDER: &str = r#"set -e
root=$1
for d in etc var opt usr/local run; do
  mkdir -p "$root/upper/$d" "$root/work/$d"
  mount -t overlay twill-host -o "lowerdir=/$d,upperdir=$root/upper/$d,workdir=$root/work/$d" "/$d"
done
for d in /var/lib/containerd /var/lib/containers; do
  mkdir -p "$d" "$root/store$d"
  mount --bind "$root/store$d" "$d"
done
touch "$root/ready"
exec sleep infinity"#;

pub struct Host {
    pub name: String,
    pub ip: String,
    pub ns: TestNs,
    pub root: PathBuf,
    holder: Child,
}

pub struct Hosts {
    pub switch: TestNs,
    pub hosts: Vec<Host>,
}

impl Hosts {
    /// `names[i]` gets `10.0.0.(11+i)/24` on `eth0`, all on one bridge.
    pub fn new(tag: &str, names: &[&str], dir: &Path) -> Hosts {
        testkit::require_privileges();
        let switch = TestNs::new(&format!("{tag}sw"));
        switch.exec_ok(&["ip", "link", "add", "br0", "type", "bridge"]);
        switch.exec_ok(&["ip", "link", "set", "br0", "up"]);
        let mut hosts = Hosts { switch, hosts: Vec::new() };
        for (i, name) in names.iter().enumerate() {
            let host = Host::new(tag, name, &format!("10.0.0.{}", 11 + i), dir, &hosts.switch, i);
            hosts.hosts.push(host);
        }
        hosts
    }

    pub fn get(&self, name: &str) -> &Host {
        self.hosts.iter().find(|h| h.name == name).unwrap_or_else(|| panic!("no host {name}"))
    }
}

impl Host {
    fn new(tag: &str, name: &str, ip: &str, dir: &Path, switch: &TestNs, i: usize) -> Host {
        let ns = TestNs::new(&format!("{tag}{i}"));
        let port = format!("p{i}");
        switch.exec_ok(&[
            "ip",
            "link",
            "add",
            &port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns.name(),
        ]);
        switch.exec_ok(&["ip", "link", "set", &port, "master", "br0", "up"]);
        for args in [
            &["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"][..],
            &["ip", "link", "set", "eth0", "up"],
        ] {
            ns.exec_ok(args);
        }
        let root = dir.join(name);
        std::fs::create_dir_all(&root).unwrap();
        let mut holder = Command::new("nsenter");
        holder.arg(format!("--net={}", ns.path().display()));
        holder.args(["unshare", "--mount", "--propagation", "private", "sh", "-c", HOLDER, "sh"]).arg(&root);
        let log = std::fs::File::create(root.join("holder.log")).unwrap();
        holder.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        let holder = holder.spawn().unwrap();
        let host = Host { name: name.to_string(), ip: ip.to_string(), ns, root, holder };
        let ready = testkit::wait_until(Duration::from_secs(10), || host.root.join("ready").exists());
        let log = std::fs::read_to_string(host.root.join("holder.log")).unwrap_or_default();
        assert!(ready, "host {name}: mounts not ready: {log}");
        host
    }

    /// `bash -euo pipefail -c SCRIPT` on this host, in `cwd`, with `env`.
    pub fn bash(&self, script: &str, cwd: &Path, env: &[(&str, String)]) -> Output {
        let target = self.holder.id().to_string();
        let mut cmd = Command::new("nsenter");
        cmd.args(["--target", &target, "--mount", "--net", "--", "bash", "-euo", "pipefail", "-c"]);
        cmd.arg(format!("cd {}\n{script}", cwd.display()));
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).output().unwrap()
    }

    /// Pids of processes in this host's mount namespace, the holder excepted.
    fn processes(&self) -> Vec<i32> {
        let ours = std::fs::read_link(format!("/proc/{}/ns/mnt", self.holder.id())).ok();
        let Some(ours) = ours else { return Vec::new() };
        let pids = std::fs::read_dir("/proc").into_iter().flatten().flatten();
        pids.filter_map(|e| e.file_name().to_str().and_then(|p| p.parse::<i32>().ok()))
            .filter(|&p| p != self.holder.id() as i32)
            .filter(|p| std::fs::read_link(format!("/proc/{p}/ns/mnt")).ok().as_ref() == Some(&ours))
            .collect()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let left = self.processes();
        if !left.is_empty() {
            eprintln!("host {}: ending processes left in its namespaces: {left:?}", self.name);
        }
        for pid in left {
            // SAFETY: these live in a mount namespace this fixture created; nothing else runs there.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// One shell block of a document, with what its `<!-- try: WHERE [cwd=..] [id=..] -->`
/// comment says.
#[derive(Debug, Clone)]
pub struct Block {
    pub line: usize,
    pub place: String,
    pub cwd: Option<String>,
    pub id: Option<String>,
    pub code: String,
}

/// Every ```sh block of `doc`; panics when one has no `try:` comment right before it.
pub fn blocks(doc: &str) -> Vec<Block> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() != "```sh" {
            i += 1;
            continue;
        }
        let comment = i.checked_sub(1).map(|p| lines[p].trim()).unwrap_or_default();
        let words = comment.strip_prefix("<!-- try:").and_then(|c| c.strip_suffix("-->"));
        let words: Vec<&str> = words
            .unwrap_or_else(|| panic!("line {}: a sh block without a `try:` comment", i + 1))
            .split_whitespace()
            .collect();
        let field = |k: &str| words.iter().find_map(|w| w.strip_prefix(k)).map(str::to_string);
        let end = (i + 1..lines.len()).find(|&j| lines[j].trim() == "```").expect("closing fence");
        out.push(Block {
            line: i + 1,
            place: words.first().copied().unwrap_or_default().to_string(),
            cwd: field("cwd="),
            id: field("id="),
            code: lines[i + 1..end].join("\n"),
        });
        i = end + 1;
    }
    out
}
