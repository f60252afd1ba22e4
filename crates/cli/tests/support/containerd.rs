//! A containerd of the test's own (root, state, sockets and config in a temp dir; never the
//! system one), started inside a node's network namespace and stopped by its pid, and
//! containers run on that node by `ctr run --rm --cni` in the foreground: that is the only
//! ctr 1.6 path that also DELs the attachment (a detached `ctr run -d --cni` is never torn
//! down by ctr), so each container's ctr runs as a child of the test until the container is
//! killed.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use super::{
    CTR_NAMESPACE, IMAGE, NodeCmd, NodeNet, build_rootfs, remove_cgroups, spawn_logged, text, wait_some,
};

/// Mounts the node's directories where ctr's go-cni looks (/etc/cni/net.d, /opt/cni/bin), in
/// the private mount namespace `unshare --mount` made, then runs the rest of the words.
/// /etc/cni/net.d belongs to Debian's podman package; /opt is hidden under a tmpfs so that
/// nothing is created on the host.
const MOUNT_CNI_DIRS: &str = r#"set -e
[ -d /etc/cni/net.d ] || { echo "/etc/cni/net.d is missing (it comes with podman)" >&2; exit 97; }
mount --bind "$1" /etc/cni/net.d
mount -t tmpfs twill-ctr-opt /opt
mkdir -p /opt/cni/bin
mount --bind "$2" /opt/cni/bin
shift 2
exec "$@""#;

pub struct Containerd {
    pub dir: PathBuf,
    node: NodeCmd,
    daemon: Child,
    tasks: Vec<CtrTask>,
    /// Every container ID run, for their cgroups.
    ran: Vec<String>,
    twill: PathBuf,
    execs: Cell<u32>,
}

/// One `ctr run --rm --cni` in the foreground, and the container it runs.
pub struct CtrTask {
    pub id: String,
    ctr: Child,
    log: PathBuf,
}

impl CtrTask {
    /// The container ID ctr gives CNI (`CTR_NAMESPACE-ID`), which names the pod.
    pub fn cni_id(&self) -> String {
        format!("{CTR_NAMESPACE}-{}", self.id)
    }
}

impl Containerd {
    /// Starts containerd inside the node whose namespace is `netns` (`nsenter --net`, which
    /// execs: the child's pid is containerd's) and waits until it answers.
    pub fn start(tag: &str, node: NodeCmd, netns: &Path, twill: &Path) -> Containerd {
        for (tool, why) in [("containerd", "the runtime under test"), ("ctr", "its client")] {
            let ok = Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
            assert!(ok, "{tool} ({why}) is not installed: run scripts/install-deps.sh");
        }
        let dir = std::env::temp_dir().join(format!("twill-containerd-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), config(&dir)).unwrap();
        let mut daemon = Command::new("nsenter");
        daemon
            .arg(format!("--net={}", netns.display()))
            .arg("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"));
        let daemon = spawn_logged(daemon, &dir.join("containerd.log"));
        let c = Containerd {
            dir,
            node,
            daemon,
            tasks: Vec::new(),
            ran: Vec::new(),
            twill: twill.to_path_buf(),
            execs: Cell::new(0),
        };
        let up = wait_some(Duration::from_secs(30), || c.ctr(&["version"]).status.success().then_some(()));
        assert!(up.is_some(), "containerd did not answer on {}: {}", c.socket(), c.log());
        c
    }

    pub fn socket(&self) -> String {
        self.dir.join("containerd.sock").display().to_string()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// `ctr --address SOCK -n twill ARGS` inside the node.
    pub fn ctr(&self, args: &[&str]) -> Output {
        let sock = self.socket();
        let mut all =
            vec!["timeout", "--kill-after=10", "120", "ctr", "--address", &sock, "-n", CTR_NAMESPACE];
        all.extend(args);
        self.node.command(&all).output().unwrap()
    }

    pub fn ctr_ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(out.status.success(), "ctr {args:?} failed ({}): {}", out.status, text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ctr image import`s the image [`build_image`] makes, with the native snapshotter
    /// (overlayfs may not nest on the test machine's /tmp).
    pub fn import_image(&self) {
        let archive = build_image(&self.dir.join("image"));
        self.ctr_ok(&["image", "import", "--snapshotter", "native", archive.to_str().unwrap()]);
        assert!(self.ctr_ok(&["image", "ls", "-q"]).lines().any(|l| l == IMAGE), "{IMAGE} imported");
    }

    /// `ctr run --rm --cni` of `cmd` as container `id`, with the node's network list mounted
    /// where ctr reads it, `/usr` and the twill binary (at `/twill`) read-only; returns once
    /// the task runs (ctr attaches the network before it starts the task).
    pub fn run_cni(&mut self, id: &str, net: &NodeNet, cmd: &[String]) -> &CtrTask {
        let sock = self.socket();
        let usr = "type=bind,src=/usr,dst=/usr,options=rbind:ro".to_string();
        let twill = format!("type=bind,src={},dst=/twill,options=rbind:ro", self.twill.display());
        let (conf, bin) = (net.conf_dir.display().to_string(), net.bin_dir.display().to_string());
        let mut all = vec!["unshare", "--mount", "sh", "-c", MOUNT_CNI_DIRS, "sh", &conf, &bin];
        all.extend(["ctr", "--address", &sock, "-n", CTR_NAMESPACE, "run", "--rm", "--cni"]);
        all.extend(["--snapshotter", "native", "--mount", &usr, "--mount", &twill, IMAGE, id]);
        all.extend(cmd.iter().map(String::as_str));
        let log = self.dir.join(format!("ctr-{id}.log"));
        let ctr = spawn_logged(self.node.command(&all), &log);
        self.tasks.push(CtrTask { id: id.to_string(), ctr, log });
        self.ran.push(id.to_string());
        let running = wait_some(Duration::from_secs(60), || {
            let task = self.tasks.last_mut()?;
            if let Ok(Some(status)) = task.ctr.try_wait() {
                let log = std::fs::read_to_string(&task.log).unwrap_or_default();
                panic!("ctr run {id} ended ({status}) before its task ran: {log}");
            }
            let listing = self.ctr(&["task", "ls"]);
            let line = String::from_utf8_lossy(&listing.stdout)
                .lines()
                .find(|l| l.starts_with(id))
                .map(str::to_string);
            line.filter(|l| l.contains("RUNNING"))
        });
        assert!(running.is_some(), "task {id} is not running after 60s");
        self.tasks.last().unwrap()
    }

    /// `ctr task exec` of `cmd` in container `id`.
    pub fn exec(&self, id: &str, cmd: &[&str]) -> Output {
        self.execs.set(self.execs.get() + 1);
        let exec_id = format!("x{}", self.execs.get());
        let mut all = vec!["task", "exec", "--exec-id", &exec_id, id];
        all.extend(cmd);
        self.ctr(&all)
    }

    /// The container's IPv4 address on eth0.
    pub fn address(&self, id: &str) -> std::net::IpAddr {
        let out = self.exec(id, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
        let shown = text(&out);
        let cidr = shown.split_whitespace().skip_while(|w| *w != "inet").nth(1);
        let addr = cidr.and_then(|c| c.split('/').next()).and_then(|a| a.parse().ok());
        addr.unwrap_or_else(|| panic!("no IPv4 address on eth0 of {id}: {shown}"))
    }

    /// SIGKILL (PID 1 of a container ignores SIGTERM) and let the foreground ctr do its
    /// teardown: CNI DEL, task and container delete. Panics when ctr fails at it.
    pub fn stop(&mut self, id: &str) {
        let at = self.tasks.iter().position(|t| t.id == id).unwrap_or_else(|| panic!("no task {id}"));
        let mut task = self.tasks.remove(at);
        self.ctr_ok(&["task", "kill", "-s", "SIGKILL", id]);
        let ended = wait_some(Duration::from_secs(30), || task.ctr.try_wait().ok().flatten());
        let log = std::fs::read_to_string(&task.log).unwrap_or_default();
        let Some(_) = ended else {
            let _ = task.ctr.kill();
            let _ = task.ctr.wait();
            panic!("ctr run {id} did not end after its task was killed: {log}");
        };
        // ctr's exit code is the container's (137 after SIGKILL); teardown errors are logged.
        assert!(!log.contains("level=error"), "ctr run {id} teardown: {log}");
        assert!(!self.ctr_ok(&["container", "ls", "-q"]).lines().any(|l| l == id), "container {id} is gone");
    }

    /// Pids of shims the daemon left (each writes `shim.pid` in its bundle).
    fn shim_pids(&self) -> Vec<i32> {
        let tasks = self.dir.join("state/io.containerd.runtime.v2.task").join(CTR_NAMESPACE);
        let bundles = std::fs::read_dir(tasks).into_iter().flatten().flatten();
        bundles
            .filter_map(|b| std::fs::read_to_string(b.path().join("shim.pid")).ok())
            .filter_map(|p| p.trim().parse().ok())
            .collect()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let ids: Vec<String> = self.tasks.iter().map(|t| t.id.clone()).collect();
        let mut ran = self.ran.clone();
        for id in ids {
            let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", &id]);
            let task = self.tasks.iter_mut().find(|t| t.id == id).unwrap();
            if wait_some(Duration::from_secs(20), || task.ctr.try_wait().ok().flatten()).is_none() {
                let _ = task.ctr.kill();
                let _ = task.ctr.wait();
            }
            let _ = self.ctr(&["task", "rm", "-f", &id]);
            let _ = self.ctr(&["container", "rm", &id]);
            eprintln!("containerd fixture removed container {id}");
        }
        let _ = self.ctr(&["image", "rm", IMAGE]);
        let shims = self.shim_pids();
        // SAFETY: signals only the daemon this fixture started and the shims it recorded.
        unsafe { libc::kill(self.daemon.id() as i32, libc::SIGTERM) };
        if wait_some(Duration::from_secs(10), || self.daemon.try_wait().ok().flatten()).is_none() {
            let _ = self.daemon.kill();
            let _ = self.daemon.wait();
        }
        for pid in shims {
            eprintln!("containerd fixture: ending shim {pid} left by a container");
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        ran.sort();
        ran.dedup();
        remove_cgroups(CTR_NAMESPACE, &ran.iter().map(String::as_str).collect::<Vec<_>>());
        unmount_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The daemon's own config: every path in `dir`; the CRI plugin off (`ctr` does not use it,
/// and it would look for CNI config of its own).
fn config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[debug]
  address = "{d}/debug.sock"
"#
    )
}

/// Lazily unmounts whatever is still mounted under `dir` (a rootfs a killed shim left).
fn unmount_under(dir: &Path) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.display().to_string();
    let mut points: Vec<&str> =
        info.lines().filter_map(|l| l.split_whitespace().nth(4)).filter(|p| p.starts_with(&prefix)).collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").args(["-l", p]).status();
    }
}

/// A docker-archive tarball of [`IMAGE`] in `dir`: one layer, the busybox rootfs; both
/// `ctr image import` and `podman load` read it.
pub fn build_image(dir: &Path) -> PathBuf {
    build_rootfs(&dir.join("rootfs"));
    let tar = |args: &[&str]| {
        let out = Command::new("tar").args(args).output().unwrap();
        assert!(out.status.success(), "tar {args:?}: {}", text(&out));
    };
    let layer = dir.join("layer.tar");
    tar(&["-C", dir.join("rootfs").to_str().unwrap(), "-cf", layer.to_str().unwrap(), "."]);
    let sum = Command::new("sha256sum").arg(&layer).output().unwrap();
    let digest =
        String::from_utf8_lossy(&sum.stdout).split_whitespace().next().unwrap_or_default().to_string();
    assert_eq!(digest.len(), 64, "sha256sum {}: {}", layer.display(), text(&sum));
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": { "Cmd": ["sh"] },
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{digest}")] },
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let manifest =
        serde_json::json!([{ "Config": "config.json", "RepoTags": [IMAGE], "Layers": ["layer.tar"] }]);
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    let archive = dir.join("image.tar");
    tar(&[
        "-C",
        dir.to_str().unwrap(),
        "-cf",
        archive.to_str().unwrap(),
        "manifest.json",
        "config.json",
        "layer.tar",
    ]);
    archive
}
