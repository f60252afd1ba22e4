//! Kernel-tier test support: throw-away network namespaces that are always removed.
//!
//! Every test that touches the kernel calls [`require_privileges`] first (it *fails*, never
//! skips, without root) and works only inside [`TestNs`] namespaces, named `twt-<tag>-<pid>-<n>`,
//! which are deleted on drop — also when the test panics. Nothing here touches the host's own
//! interfaces, routes or firewall.
//!
//! Deleting a namespace returns before the kernel has torn down what was in it (a veth's peer
//! in another namespace disappears a few milliseconds later); use [`wait_until`] before
//! counting leftovers.

mod nft;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use netns::NetNs;
use nl::Handle;

pub mod etcd;
pub mod golden;
pub mod policy_docs;
mod tempdir;
pub mod truth;

pub use etcd::{EtcdCluster, EtcdOpts, ServerTls};
pub use tempdir::TempDir;

/// Prefix of every namespace created by tests.
pub const PREFIX: &str = "twt-";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Panics with a clear message unless this process can create network namespaces (root with
/// CAP_SYS_ADMIN and CAP_NET_ADMIN) and run `ip`. Kernel-tier tests must never pass silently.
pub fn require_privileges() {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(msg) = CHECK.get_or_init(check_privileges) {
        panic!("kernel-tier test needs privileges: {msg}");
    }
}

fn check_privileges() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not running as root (run the kernel-tier tests as root)".into());
    }
    let name = unique_name("probe");
    netns::create_named(&name).map_err(|e| format!("cannot create a network namespace: {e}"))?;
    netns::delete_named(&name).map_err(|e| format!("cannot delete a network namespace: {e}"))?;
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!("`ip -V` failed: {}", String::from_utf8_lossy(&o.stderr))),
        Err(e) => Err(format!("cannot run `ip` (iproute2): {e}")),
    }
}

/// Makes sure br_netfilter is in the kernel, as NetworkPolicy on a bridge needs (docs/policy.md,
/// "Hook placement"): where it is a module not loaded yet (Debian's kernels), loads it with
/// `modprobe br_netfilter`, like a Kubernetes node's setup does; fails clearly when it
/// cannot. The switches it brings (`net.bridge.bridge-nf-call-*`) are per namespace; tests
/// and twilld set them in their own namespaces.
pub fn require_br_netfilter() {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(msg) = CHECK.get_or_init(load_br_netfilter) {
        panic!("test needs br_netfilter: {msg}");
    }
}

fn load_br_netfilter() -> Result<(), String> {
    let present = || std::path::Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists();
    if present() {
        return Ok(());
    }
    match Command::new("modprobe").arg("br_netfilter").output() {
        Ok(o) if o.status.success() && present() => Ok(()),
        Ok(o) => Err(format!("`modprobe br_netfilter` failed: {}", String::from_utf8_lossy(&o.stderr))),
        Err(e) => Err(format!("cannot run modprobe (kmod) to load br_netfilter: {e}")),
    }
}

/// Whether this kernel gives SCTP sockets. Asked the way a probe asks — by opening one, which
/// also loads the sctp module where it is one — rather than by `/proc/net/sctp`, which shows
/// only once the module is loaded.
pub fn kernel_has_sctp() -> bool {
    // SAFETY: socket(2) with constant arguments; the descriptor is closed right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, libc::IPPROTO_SCTP) };
    if fd < 0 {
        return false;
    }
    // SAFETY: fd is a descriptor this function just opened and owns.
    unsafe { libc::close(fd) };
    true
}

fn unique_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}{tag}-{}-{n}", std::process::id())
}

/// A named network namespace (`/run/netns/twt-...`) with loopback up and the kernel's default
/// sysctls (whatever the host's are, see [`nl::reset_inherited`]), deleted on drop.
#[derive(Debug)]
pub struct TestNs {
    name: String,
    ns: NetNs,
}

impl TestNs {
    /// Creates `twt-<tag>-<pid>-<counter>`; panics if that fails.
    pub fn new(tag: &str) -> TestNs {
        let name = unique_name(tag);
        let ns = netns::create_named(&name).unwrap_or_else(|e| panic!("create test netns {name}: {e}"));
        let t = TestNs { name, ns };
        // A new namespace inherits the host's IPv4 settings (a host that forwards makes every
        // namespace forward); tests start from a freshly booted kernel's instead.
        nl::reset_inherited(&t.ns).unwrap_or_else(|e| panic!("reset inherited sysctls in {}: {e}", t.name));
        let h = t.handle();
        match h.link_get("lo") {
            Ok(Some(lo)) => {
                h.link_set_up(lo.index, true).unwrap_or_else(|e| panic!("set lo up in {}: {e}", t.name))
            }
            other => panic!("find lo in {}: {other:?}", t.name),
        }
        t
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`.
    pub fn path(&self) -> PathBuf {
        netns::named_path(&self.name)
    }

    pub fn ns(&self) -> &NetNs {
        &self.ns
    }

    /// A fresh netlink handle inside this namespace; panics if it cannot be opened.
    pub fn handle(&self) -> Handle {
        Handle::in_netns(&self.ns).unwrap_or_else(|e| panic!("netlink handle in {}: {e}", self.name))
    }

    /// `ip netns exec NAME argv...`.
    pub fn exec(&self, argv: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .output()
            .unwrap_or_else(|e| panic!("run {argv:?} in {}: {e}", self.name))
    }

    /// Like [`TestNs::exec`]; panics with stderr unless it succeeds, returns stdout.
    pub fn exec_ok(&self, argv: &[&str]) -> String {
        let out = self.exec(argv);
        if !out.status.success() {
            panic!(
                "{argv:?} in {} failed ({}): {}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a JSON-printing command (e.g. `ip -j -d link show`) and parses its output;
    /// empty output parses as an empty array.
    pub fn exec_json(&self, argv: &[&str]) -> serde_json::Value {
        let out = self.exec_ok(argv);
        if out.trim().is_empty() {
            return serde_json::Value::Array(Vec::new());
        }
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{argv:?}: bad JSON ({e}): {out}"))
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        if let Err(e) = netns::delete_named(&self.name) {
            eprintln!("testkit: cannot delete netns {}: {e}", self.name);
        }
    }
}

/// A fake host namespace next to a container namespace.
#[derive(Debug)]
pub struct NsPair {
    pub host: TestNs,
    pub container: TestNs,
}

impl NsPair {
    /// Creates `twt-<tag>h-...` and `twt-<tag>c-...`.
    pub fn new(tag: &str) -> NsPair {
        NsPair { host: TestNs::new(&format!("{tag}h")), container: TestNs::new(&format!("{tag}c")) }
    }
}

/// Polls `f` every 10 ms until it returns true (→ true) or `timeout` passes (→ false).
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Names of test namespaces created by this process that still exist in `/run/netns`.
pub fn leftover_namespaces() -> Vec<String> {
    let mine = format!("-{}-", std::process::id());
    std::fs::read_dir(netns::NETNS_RUN_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(PREFIX) && n.contains(&mine))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_prefixed() {
        let a = unique_name("x");
        let b = unique_name("x");
        assert_ne!(a, b);
        assert!(a.starts_with("twt-x-"));
    }

    #[test]
    fn wait_until_times_out() {
        assert!(!wait_until(Duration::from_millis(30), || false));
        let mut n = 0;
        assert!(wait_until(Duration::from_secs(1), || {
            n += 1;
            n > 2
        }));
    }
}
