//! Test support: temporary directories and a real etcd server, both removed on drop.
#![allow(dead_code)]

pub mod cluster;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use netns::NetNs;
use twill_agent::store::{Datastore, EtcdStore};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A directory under the system temp dir, removed with everything in it on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("twill-agent-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("create {}: {e}", p.display()));
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port nobody listens on right now on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A one-member etcd cluster with a temporary data dir, killed (by pid) on drop.
pub struct Etcd {
    child: Option<Child>,
    pub addr: String,
    peer_port: u16,
    data: TempDir,
    ns: Option<NetNs>,
}

/// The etcd binary; panics with the fix when it is not installed.
pub fn etcd_binary() -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let p = Path::new(dir).join("etcd");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "etcd is not installed: these tests need a real etcd 3.4 (apt-get install etcd-server, see scripts/install-deps.sh)"
    );
}

impl Etcd {
    /// etcd on 127.0.0.1 with random free ports, in this process's namespace. A port taken
    /// between choosing it and etcd binding it means another try with new ports.
    pub fn start() -> Etcd {
        let mut last = String::new();
        for _ in 0..3 {
            let (client, peer) = (free_port(), free_port());
            let mut e = Etcd::unstarted(format!("127.0.0.1:{client}"), peer, None);
            match e.try_spawn() {
                Ok(()) => return e,
                Err(why) => last = why,
            }
        }
        panic!("etcd did not start: {last}");
    }

    /// etcd listening on `addr` (and its peer port on loopback) inside `ns`.
    pub fn start_in(ns: &NetNs, addr: &str, peer_port: u16) -> Etcd {
        let ns = NetNs::open(ns.path()).expect("reopen netns");
        Etcd::start_at(addr.to_string(), peer_port, Some(ns))
    }

    fn start_at(addr: String, peer_port: u16, ns: Option<NetNs>) -> Etcd {
        let mut e = Etcd::unstarted(addr, peer_port, ns);
        e.spawn();
        e
    }

    fn unstarted(addr: String, peer_port: u16, ns: Option<NetNs>) -> Etcd {
        Etcd { child: None, addr, peer_port, data: TempDir::new("etcd"), ns }
    }

    fn spawn(&mut self) {
        if let Err(why) = self.try_spawn() {
            panic!("{why}");
        }
    }

    fn try_spawn(&mut self) -> Result<(), String> {
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let client = format!("http://{}", self.addr);
        let mut cmd = Command::new(etcd_binary());
        cmd.args(["--name", "t", "--data-dir"])
            .arg(self.data.path().join("data"))
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("t={peer}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.data.path().join("etcd.log")).expect("etcd log"));
        if let Some(ns) = &self.ns {
            ns.spawn_inside(&mut cmd);
        }
        self.child = Some(cmd.spawn().map_err(|e| format!("start etcd: {e}"))?);
        self.wait_ready()
    }

    /// Runs `f` with a client, from inside the server's namespace when it has one.
    pub fn with<T: Send>(&self, f: impl FnOnce(&EtcdStore) -> T + Send) -> T {
        let store = EtcdStore::new(&self.addr);
        match &self.ns {
            Some(ns) => ns.run(|| f(&store)).expect("enter etcd netns"),
            None => f(&store),
        }
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.with(|s| s.list("/").is_ok()) {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Err(format!("etcd exited ({status}): {}", self.log()));
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(format!("etcd did not become ready: {}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("etcd.log")).unwrap_or_default()
    }

    /// SIGKILL by pid: an outage.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same address and data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}
