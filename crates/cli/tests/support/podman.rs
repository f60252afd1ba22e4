//! podman (Debian 4.3) as a real CNI runtime for twill, set up as a podman user would: a
//! containers.conf selecting the CNI backend, `cni_plugin_dirs` pointing at a bin dir that
//! `twill install` populated, `network_config_dir` and all storage in a temp dir, runc and
//! cgroupfs, and a busybox-static root filesystem (no registry is reachable) run with
//! `--rootfs`. podman runs in the real root namespace; the fixture takes a
//! [`HostSnapshot`] first and on drop removes every container, network and host object
//! the test made, also after a panic. One fixture at a time: podman picks the bridge name
//! (`cni-podmanN`) by looking at the host, so two at once could pick the same.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use ipnet::IpNet;
use serde_json::Value;

use crate::host_trace::{HostSnapshot, TestNet};

/// The plugins podman 4.3's generated conflists name (bridge delegates to host-local).
pub const PODMAN_PLUGINS: [&str; 5] = ["bridge", "host-local", "portmap", "firewall", "tuning"];
/// Where Debian's reference plugins live.
const REFERENCE_DIR: &str = "/usr/lib/cni";
/// busybox-static's binary: statically linked, so it runs alone in a bare rootfs.
const BUSYBOX: &str = "/bin/busybox";
/// Any podman call taking longer is stuck; `timeout` ends it so the test fails, not hangs.
const PODMAN_TIMEOUT_SECS: &str = "120";

static SERIAL: Mutex<()> = Mutex::new(());

/// Who provides a plugin in the bin dir podman uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Twill,
    Reference(PathBuf),
}

pub struct Podman {
    pub dir: PathBuf,
    pub host: HostSnapshot,
    pub sources: Vec<(&'static str, Source)>,
    rootfs: PathBuf,
    nets: Mutex<Vec<TestNet>>,
    _serial: MutexGuard<'static, ()>,
}

impl Podman {
    /// Fails (never skips) when podman, runc or busybox-static are missing.
    pub fn new(tag: &str) -> Podman {
        testkit::require_privileges();
        let serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        require_tools();
        let dir = std::env::temp_dir().join(format!("twill-podman-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["bin", "net", "root", "runroot", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let host = HostSnapshot::take();
        let sources = populate_bin(&dir.join("bin"));
        write_containers_conf(&dir);
        let rootfs = build_rootfs(&dir.join("rootfs"));
        Podman { dir, host, sources, rootfs, nets: Mutex::new(Vec::new()), _serial: serial }
    }

    /// `podman GLOBAL-FLAGS args...` with this fixture's containers.conf.
    pub fn cmd(&self, args: &[&str]) -> Output {
        let d = |sub: &str| self.dir.join(sub).display().to_string();
        let (root, runroot, tmp) = (d("root"), d("runroot"), d("tmp"));
        Command::new("timeout")
            .args(["--kill-after=10", PODMAN_TIMEOUT_SECS, "podman"])
            .args(["--root", &root, "--runroot", &runroot, "--tmpdir", &tmp, "--storage-driver", "vfs"])
            .args(args)
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .output()
            .unwrap_or_else(|e| panic!("run podman {args:?}: {e}"))
    }

    /// Runs podman; panics with its stderr unless it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "podman {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs podman expecting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            !out.status.success(),
            "podman {args:?} should fail: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `podman network create [--ipv6] --subnet ... NAME`; refuses subnets the host uses.
    pub fn network_create(&self, name: &str, subnets: &[&str], ipv6: bool) -> TestNet {
        let parsed: Vec<IpNet> = subnets.iter().map(|s| s.parse().unwrap()).collect();
        for subnet in &parsed {
            assert!(!host_uses(subnet), "subnet {subnet} is in use on this host; pick another for the test");
        }
        // The name is this test's: what a killed earlier run left under it would be counted.
        let stale = crate::host_trace::remove_state(name);
        if !stale.is_empty() {
            eprintln!("network {name}: removed what an earlier run left: {}", stale.join(", "));
        }
        let mut args = vec!["network", "create"];
        if ipv6 {
            args.push("--ipv6");
        }
        for s in subnets {
            args.extend(["--subnet", s]);
        }
        args.push(name);
        // Recorded before the call, so a half-made network is removed too.
        self.nets.lock().unwrap().push(TestNet { name: name.into(), bridge: String::new(), subnets: parsed });
        self.ok(&args);
        let inspect: Value = serde_json::from_str(&self.ok(&["network", "inspect", name])).unwrap();
        let bridge = inspect[0]["network_interface"].as_str().expect("network_interface").to_string();
        let host_has = |b: &str| std::fs::metadata(format!("/sys/class/net/{b}")).is_ok();
        assert!(!host_has(&bridge), "podman chose bridge {bridge}, which already exists on this host");
        let mut nets = self.nets.lock().unwrap();
        let net = nets.iter_mut().find(|n| n.name == name).unwrap();
        net.bridge = bridge;
        net.clone()
    }

    /// The network's conflist as podman wrote it.
    pub fn conflist(&self, net: &TestNet) -> Value {
        let text =
            std::fs::read_to_string(self.dir.join("net").join(format!("{}.conflist", net.name))).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// `podman run -d --name NAME --network NET OPTS --rootfs ROOTFS CMD...`.
    pub fn run_detached(&self, net: &TestNet, name: &str, opts: &[&str], cmd: &[&str]) -> String {
        let mut args = vec!["run", "-d", "--name", name, "--network", &net.name];
        args.extend(opts);
        self.ok(&self.with_rootfs(args, cmd)).trim().to_string()
    }

    /// `podman run --rm --network NET OPTS --rootfs ROOTFS CMD...`, in the foreground.
    pub fn run(&self, net: &TestNet, opts: &[&str], cmd: &[&str]) -> Output {
        let mut args = vec!["run", "--rm", "--network", &net.name];
        args.extend(opts);
        self.cmd(&self.with_rootfs(args, cmd))
    }

    fn with_rootfs<'a>(&'a self, mut args: Vec<&'a str>, cmd: &[&'a str]) -> Vec<&'a str> {
        args.push("--rootfs");
        args.push(self.rootfs.to_str().unwrap());
        args.extend(cmd);
        args
    }

    /// The addresses podman reports for container `name` (IPv4 first).
    pub fn addresses(&self, name: &str) -> Vec<IpAddr> {
        let inspect: Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        let nets = inspect[0]["NetworkSettings"]["Networks"].as_object().cloned().unwrap_or_default();
        let field = |n: &Value, k: &str| n[k].as_str().filter(|s| !s.is_empty()).map(|s| s.parse().unwrap());
        nets.values().flat_map(|n| [field(n, "IPAddress"), field(n, "GlobalIPv6Address")]).flatten().collect()
    }

    /// `podman rm -f -t 0 NAMES...` (no grace period: busybox as PID 1 ignores SIGTERM).
    pub fn rm(&self, names: &[&str]) {
        let mut args = vec!["rm", "-f", "-t", "0"];
        args.extend(names);
        self.ok(&args);
    }

    pub fn network_rm(&self, net: &TestNet) {
        self.ok(&["network", "rm", &net.name]);
    }

    /// Panics listing what `net` left on the host, after letting the kernel finish removing
    /// veths (asynchronous once a namespace is gone).
    pub fn assert_clean(&self, net: &TestNet, removed: bool, when: &str) {
        let mut left = Vec::new();
        let settled = testkit::wait_until(std::time::Duration::from_secs(10), || {
            left = self.host.leftovers(net, removed);
            left.is_empty()
        });
        assert!(settled, "{when}: network {} left behind:\n  {}", net.name, left.join("\n  "));
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "-a", "-f", "-t", "0"]);
        let nets = std::mem::take(&mut *self.nets.lock().unwrap_or_else(|p| p.into_inner()));
        for net in &nets {
            let _ = self.cmd(&["network", "rm", "-f", &net.name]);
        }
        let removed = self.host.restore(&nets);
        if !removed.is_empty() {
            eprintln!("podman fixture removed after the test: {}", removed.join(", "));
        }
        let diff = self.host.differences();
        if !diff.is_empty() {
            eprintln!("podman fixture: host differs from before the test: {}", diff.join(", "));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn require_tools() {
    for (tool, why) in [("podman", "the runtime under test"), ("runc", "podman's OCI runtime here")] {
        let ok = Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
        assert!(ok, "{tool} ({why}) is not installed: run scripts/install-deps.sh");
    }
    assert!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} missing: install busybox-static (scripts/install-deps.sh)"
    );
}

/// `twill install` into `bin`; a plugin podman needs that twill lacks is linked to the
/// reference binary. Prints where each came from.
fn populate_bin(bin: &Path) -> Vec<(&'static str, Source)> {
    let out = Command::new(env!("CARGO_BIN_EXE_twill"))
        .args(["install", "--cni-bin-dir"])
        .arg(bin)
        .output()
        .unwrap();
    assert!(out.status.success(), "twill install: {}", String::from_utf8_lossy(&out.stderr));
    let sources: Vec<(&'static str, Source)> = PODMAN_PLUGINS
        .iter()
        .map(|name| {
            let link = bin.join(name);
            if std::fs::read_link(&link).is_ok_and(|t| t == Path::new("twill-cni")) {
                return (*name, Source::Twill);
            }
            let target = Path::new(REFERENCE_DIR).join(name);
            assert!(target.is_file(), "twill lacks {name} and {} is missing too", target.display());
            std::os::unix::fs::symlink(&target, &link).unwrap();
            (*name, Source::Reference(target))
        })
        .collect();
    let shown: Vec<String> = sources
        .iter()
        .map(|(n, s)| match s {
            Source::Twill => format!("{n}=twill"),
            Source::Reference(p) => format!("{n}=REFERENCE {}", p.display()),
        })
        .collect();
    eprintln!("podman CNI plugins: {}", shown.join(" "));
    sources
}

fn write_containers_conf(dir: &Path) {
    let conf = format!(
        r#"[containers]
# The sandbox lacks CAP_SYS_RESOURCE: podman's default rlimits cannot be set.
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[network]
network_backend = "cni"
cni_plugin_dirs = ["{bin}"]
network_config_dir = "{net}"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
# File locks live under --tmpdir; the default shm lock would leave /dev/shm/libpod_lock.
lock_type = "file"
"#,
        bin = dir.join("bin").display(),
        net = dir.join("net").display(),
    );
    std::fs::write(dir.join("containers.conf"), conf).unwrap();
}

/// `/bin/busybox` plus a link per applet (`sh`, `ip`, `ping`, `nc`, `sleep`, ...).
fn build_rootfs(rootfs: &Path) -> PathBuf {
    for sub in ["bin", "etc", "tmp"] {
        std::fs::create_dir_all(rootfs.join(sub)).unwrap();
    }
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines().filter(|a| *a != "busybox") {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
    rootfs.to_path_buf()
}

/// The third octets (`N`) of the tests' networks.
const NETWORKS: std::ops::RangeInclusive<u8> = 101..=106;

/// The second octet `X` of the tests' networks `10.X.N.0/24` and `fd00:X:N::/64`: the first
/// of 233..=254 for which none of them is in use on this host, so the tests run beside
/// whatever networks the host has (a kubespray node, say, routes 10.233.64.0/18).
fn octet() -> u8 {
    static OCTET: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    *OCTET.get_or_init(|| {
        let free = |x: u8| {
            NETWORKS.into_iter().all(|n| {
                let v4: IpNet = format!("10.{x}.{n}.0/24").parse().unwrap();
                let v6: IpNet = format!("fd00:{x}:{n}::/64").parse().unwrap();
                !host_uses(&v4) && !host_uses(&v6)
            })
        };
        (233..=254).find(|x| free(*x)).expect("every 10.X.101-106.0/24 (X 233..254) is in use on this host")
    })
}

/// `10.X.N.0/24`, a test network no host network overlaps.
pub fn net4(n: u8) -> String {
    format!("10.{}.{n}.0/24", octet())
}

/// `fd00:X:N::/64`, the IPv6 twin of [`net4`].
pub fn net6(n: u8) -> String {
    format!("fd00:{}:{n}::/64", octet())
}

/// Address `host` of [`net4`]`(n)`.
pub fn ip4(n: u8, host: u8) -> String {
    format!("10.{}.{n}.{host}", octet())
}

/// Whether any host address or route lies in `subnet` (the test must not touch it then).
fn host_uses(subnet: &IpNet) -> bool {
    let family = if matches!(subnet, IpNet::V4(_)) { "-4" } else { "-6" };
    let words = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect::<Vec<_>>()
    };
    let mut candidates = words(&[family, "-o", "addr", "show"]);
    candidates.extend(words(&[family, "route", "show", "table", "all"]));
    candidates
        .iter()
        .filter_map(|w| w.parse::<IpNet>().ok().or_else(|| w.parse::<IpAddr>().ok().map(IpNet::from)))
        .any(|n| subnet.contains(&n.network()) || n.contains(&subnet.network()) && n.prefix_len() > 0)
}
