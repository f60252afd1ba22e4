//! Real container runtimes on a cluster node: podman (Debian 4.3, CNI backend, runc) and
//! containerd (Debian 1.6, `ctr run --cni`), each run INSIDE the node's network namespace
//! with the node's network list, so the CNI plugins' "host" is that node — as on a real host
//! where the runtime, twilld and the plugins share the host's network namespace.
//!
//! Everything lives in a temp dir: podman's root, runroot and containers.conf; containerd's
//! root, state, sockets and config. containerd is stopped by the pid this fixture started;
//! containers are removed (podman `rm -f`, ctr SIGKILL then `ctr run --rm`'s own teardown),
//! also when the test panics. No registry is reachable: podman runs a busybox-static root
//! filesystem (`--rootfs`), containerd an image built from it as a docker-archive tarball and
//! loaded with `ctr image import`.
//!
//! What the runtimes pass to CNI (measured by lab_runtimes.rs): podman `CNI_ARGS=
//! IgnoreUnknown=1;K8S_POD_NAME=<container name>`, netns `/run/netns/netns-<uuid>`; ctr 1.6
//! no CNI_ARGS, container ID `<ctr namespace>-<container id>`, netns `/proc/PID/ns/net`, DEL
//! with an empty netns. ctr 1.6 ignores containerd's config for `--cni`: it always loads the
//! first network list of /etc/cni/net.d and the plugins of /opt/cni/bin (go-cni's defaults),
//! so ctr runs in a private mount namespace with the node's directories mounted there.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// busybox-static's binary: statically linked, so it runs alone in a bare rootfs.
pub const BUSYBOX: &str = "/bin/busybox";
/// The image `Containerd::import` loads.
pub const IMAGE: &str = "twill.test/busybox:latest";
/// containerd namespace of the test's containers; ctr names the CNI attachment `NS-ID`.
pub const CTR_NAMESPACE: &str = "twill";
/// Any runtime call taking longer is stuck; `timeout` ends it so the test fails, not hangs.
const CALL_TIMEOUT: &str = "120";

/// How to run a command on a node: a program and the words before the command (e.g.
/// `twill lab exec node-1 --`, `nsenter --net=... --`) plus environment.
#[derive(Clone, Debug)]
pub struct NodeCmd {
    pub name: String,
    pub program: PathBuf,
    pub pre: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl NodeCmd {
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.pre).args(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }
}

/// A node's network list, as `twill lab status --json` reports it.
#[derive(Clone, Debug)]
pub struct NodeNet {
    pub conf_dir: PathBuf,
    pub bin_dir: PathBuf,
    pub network: String,
}

fn require(tool: &str, why: &str) {
    let ok = Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "{tool} ({why}) is not installed: run scripts/install-deps.sh");
}

pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `/bin/busybox` and a link per applet, plus what a host program needs when `/usr` is
/// bind-mounted read-only (`lib`, `lib64` → `usr/...`, as on a merged-/usr Debian): the
/// containers run the `twill` binary under test, mounted at `/twill`.
pub fn build_rootfs(rootfs: &Path) {
    assert!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} missing: install busybox-static (scripts/install-deps.sh)"
    );
    for sub in ["bin", "etc", "tmp", "usr", "proc", "sys", "dev"] {
        std::fs::create_dir_all(rootfs.join(sub)).unwrap();
    }
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines().filter(|a| *a != "busybox") {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    for lib in ["lib", "lib64"] {
        std::os::unix::fs::symlink(format!("usr/{lib}"), rootfs.join(lib)).unwrap();
    }
    std::fs::write(rootfs.join("twill"), "").unwrap();
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
}

/// The container's command serving like a lab pod: `twill lab serve --who default/NAME`.
pub fn serve_cmd(pod: &str) -> Vec<String> {
    ["/twill", "lab", "serve", "--who", pod].into_iter().map(String::from).collect()
}

/// Parses `client=IP:PORT` out of a lab server's answer line.
pub fn client_of(answer: &str) -> Option<std::net::IpAddr> {
    let word = answer.split_whitespace().find_map(|w| w.strip_prefix("client="))?;
    word.parse::<std::net::SocketAddr>().ok().map(|a| a.ip())
}

/// podman with the CNI backend on one node: `cni_plugin_dirs` is the node's bin dir,
/// `network_config_dir` the node's conf dir; every call runs inside the node.
pub struct NodePodman {
    pub dir: PathBuf,
    pub node: NodeCmd,
    rootfs: PathBuf,
    twill: PathBuf,
}

impl NodePodman {
    pub fn new(tag: &str, node: NodeCmd, net: &NodeNet, twill: &Path) -> NodePodman {
        require("podman", "the runtime under test");
        require("runc", "podman's OCI runtime here (crun refuses this machine's cgroup layout)");
        let dir = std::env::temp_dir().join(format!("twill-podman-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["root", "runroot", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        write_containers_conf(&dir, net);
        let rootfs = dir.join("rootfs");
        build_rootfs(&rootfs);
        NodePodman { dir, node, rootfs, twill: twill.to_path_buf() }
    }

    /// `podman GLOBAL-FLAGS args...` inside the node.
    pub fn cmd(&self, args: &[&str]) -> Output {
        let d = |sub: &str| self.dir.join(sub).display().to_string();
        let (root, runroot, tmp) = (d("root"), d("runroot"), d("tmp"));
        let mut all = vec!["timeout", "--kill-after=10", CALL_TIMEOUT, "podman"];
        all.extend(["--root", &root, "--runroot", &runroot, "--tmpdir", &tmp, "--storage-driver", "vfs"]);
        all.extend(args);
        self.node
            .command(&all)
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .output()
            .unwrap_or_else(|e| panic!("run podman {args:?} on {}: {e}", self.node.name))
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "podman {args:?} on {} failed ({}): {}",
            self.node.name,
            out.status,
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `podman run -d --name NAME --network NET -v /usr:/usr:ro -v TWILL:/twill:ro --rootfs
    /// ROOTFS CMD...`.
    pub fn run_detached(&self, name: &str, network: &str, cmd: &[String]) -> String {
        let usr = "/usr:/usr:ro".to_string();
        let twill = format!("{}:/twill:ro", self.twill.display());
        let rootfs = self.rootfs.display().to_string();
        let mut args = vec!["run", "-d", "--name", name, "--network", network, "-v", &usr, "-v", &twill];
        args.extend(["--rootfs", &rootfs]);
        args.extend(cmd.iter().map(String::as_str));
        self.ok(&args).trim().to_string()
    }

    /// `podman run -d --network NET --rootfs ROOTFS CMD...`, podman naming the container;
    /// returns its ID.
    pub fn run_detached_unnamed(&self, network: &str, cmd: &[String]) -> String {
        let rootfs = self.rootfs.display().to_string();
        let mut args = vec!["run", "-d", "--network", network, "--rootfs", &rootfs];
        args.extend(cmd.iter().map(String::as_str));
        self.ok(&args).trim().to_string()
    }

    /// `podman exec NAME CMD...`.
    pub fn exec(&self, name: &str, cmd: &[&str]) -> Output {
        let mut args = vec!["exec", name];
        args.extend(cmd);
        self.cmd(&args)
    }

    /// The IPv4 address podman reports for container `name`.
    pub fn address(&self, name: &str) -> std::net::IpAddr {
        let got = self.ok(&[
            "inspect",
            "--format",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            name,
        ]);
        got.trim().parse().unwrap_or_else(|e| panic!("address of {name}: {got:?}: {e}"))
    }

    /// `podman rm -f -t 0 NAMES...` (no grace period: the server as PID 1 ignores SIGTERM).
    pub fn rm(&self, names: &[&str]) {
        let mut args = vec!["rm", "-f", "-t", "0"];
        args.extend(names);
        self.ok(&args);
    }
}

impl Drop for NodePodman {
    fn drop(&mut self) {
        let out = self.cmd(&["rm", "-a", "-f", "-t", "0"]);
        if !out.stdout.is_empty() {
            eprintln!("podman fixture removed containers: {}", String::from_utf8_lossy(&out.stdout).trim());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write_containers_conf(dir: &Path, net: &NodeNet) {
    let conf = format!(
        r#"[containers]
# The sandbox lacks CAP_SYS_RESOURCE: podman's default rlimits cannot be set.
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[network]
network_backend = "cni"
cni_plugin_dirs = ["{bin}"]
network_config_dir = "{conf}"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
"#,
        bin = net.bin_dir.display(),
        conf = net.conf_dir.display(),
    );
    std::fs::write(dir.join("containers.conf"), conf).unwrap();
}

#[path = "containerd.rs"]
mod containerd;
#[allow(unused_imports)]
pub use containerd::{Containerd, build_image};

/// Polls `f` every 200 ms until it gives `Some`, for at most `limit`.
pub fn wait_some<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Spawns `cmd` with its output appended to `log`.
pub fn spawn_logged(mut cmd: Command, log: &Path) -> Child {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    cmd.stdin(Stdio::null()).stdout(file.try_clone().unwrap()).stderr(file);
    cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"))
}

/// Removes the (empty) cgroups runc made for `parent/child` and then `parent` itself under
/// every v1 controller and the v2 tree: runc removes a container's cgroup but not the
/// parent containerd names after its namespace, and a container killed with its shim keeps
/// its own. A cgroup still in use is not empty and stays (rmdir fails).
pub fn remove_cgroups(parent: &str, children: &[&str]) {
    let roots = std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten().map(|e| e.path());
    for root in roots.chain(std::iter::once(PathBuf::from("/sys/fs/cgroup"))) {
        for child in children {
            let _ = std::fs::remove_dir(root.join(parent).join(child));
        }
        let _ = std::fs::remove_dir(root.join(parent));
    }
}
