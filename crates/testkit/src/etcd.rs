//! Real etcd servers for tests: one member or a cluster of several, plain HTTP or TLS (with
//! client certificates), on 127.0.0.1 or on an address inside a test namespace. Data lives in
//! a temporary directory; every member is killed by its pid on drop. Members can be killed,
//! restarted with their data, frozen (SIGSTOP) and thawed, to play outages.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netns::NetNs;

use crate::TempDir;

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

/// A port nobody listens on right now on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// Server-side TLS: the members present `cert`, signed by `ca`; with `client_auth` they
/// demand client certificates signed by `ca`.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_auth: bool,
}

/// How to run the cluster.
#[derive(Debug, Clone)]
pub struct EtcdOpts {
    pub members: usize,
    /// Client address of each member; `None`: 127.0.0.1 with free ports.
    pub hosts: Option<Vec<(String, u16)>>,
    pub tls: Option<ServerTls>,
}

impl Default for EtcdOpts {
    fn default() -> EtcdOpts {
        EtcdOpts { members: 1, hosts: None, tls: None }
    }
}

struct Member {
    name: String,
    client_url: String,
    peer_url: String,
    child: Option<Child>,
}

/// A running etcd cluster.
pub struct EtcdCluster {
    members: Vec<Member>,
    initial_cluster: String,
    tls: Option<ServerTls>,
    ns: Option<NetNs>,
    dir: TempDir,
}

impl EtcdCluster {
    /// One plain-HTTP member on 127.0.0.1.
    pub fn start() -> EtcdCluster {
        EtcdCluster::start_with(EtcdOpts::default(), None)
    }

    /// A cluster as `opts` says, inside `ns` when given. Ports taken between choosing them
    /// and etcd binding them mean another try with new ports.
    pub fn start_with(opts: EtcdOpts, ns: Option<&NetNs>) -> EtcdCluster {
        let mut last = String::new();
        for _ in 0..3 {
            let mut c = EtcdCluster::plan(&opts, ns);
            match c.start_all() {
                Ok(()) => return c,
                Err(why) => last = why,
            }
        }
        panic!("etcd did not start: {last}");
    }

    fn plan(opts: &EtcdOpts, ns: Option<&NetNs>) -> EtcdCluster {
        let scheme = if opts.tls.is_some() { "https" } else { "http" };
        let members: Vec<Member> = (0..opts.members)
            .map(|i| {
                let (host, port) = match &opts.hosts {
                    Some(h) => h[i].clone(),
                    None => ("127.0.0.1".to_string(), free_port()),
                };
                let peer_port = if opts.hosts.is_some() { port + 1 } else { free_port() };
                Member {
                    name: format!("m{i}"),
                    client_url: format!("{scheme}://{host}:{port}"),
                    peer_url: format!("http://{host}:{peer_port}"),
                    child: None,
                }
            })
            .collect();
        let initial_cluster =
            members.iter().map(|m| format!("{}={}", m.name, m.peer_url)).collect::<Vec<_>>().join(",");
        let ns = ns.map(|n| NetNs::open(n.path()).expect("reopen netns"));
        EtcdCluster { members, initial_cluster, tls: opts.tls.clone(), ns, dir: TempDir::new("etcd") }
    }

    fn start_all(&mut self) -> Result<(), String> {
        let offsets = (0..self.members.len()).map(|i| self.spawn(i)).collect::<Result<Vec<_>, _>>()?;
        offsets.into_iter().enumerate().try_for_each(|(i, offset)| self.wait_ready(i, offset))
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("{}.log", self.members[i].name))
    }

    fn args(&self, i: usize) -> Vec<String> {
        let m = &self.members[i];
        let data = self.dir.path().join(format!("{}.data", m.name));
        let mut a: Vec<String> = vec![
            "--name".into(),
            m.name.clone(),
            "--data-dir".into(),
            data.display().to_string(),
            "--listen-client-urls".into(),
            m.client_url.clone(),
            "--advertise-client-urls".into(),
            m.client_url.clone(),
            "--listen-peer-urls".into(),
            m.peer_url.clone(),
            "--initial-advertise-peer-urls".into(),
            m.peer_url.clone(),
            "--initial-cluster".into(),
            self.initial_cluster.clone(),
            "--initial-cluster-state".into(),
            "new".into(),
        ];
        if let Some(t) = &self.tls {
            for (flag, path) in
                [("--cert-file", &t.cert), ("--key-file", &t.key), ("--trusted-ca-file", &t.ca)]
            {
                a.extend([flag.to_string(), path.display().to_string()]);
            }
            if t.client_auth {
                a.push("--client-cert-auth".into());
            }
        }
        a
    }

    /// Starts member `i`; returns the length its log had before, where this run's lines start.
    fn spawn(&mut self, i: usize) -> Result<usize, String> {
        let offset = self.log(i).len();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .map_err(|e| format!("etcd log: {e}"))?;
        let mut cmd = Command::new(etcd_binary());
        cmd.args(self.args(i)).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        if let Some(ns) = &self.ns {
            ns.spawn_inside(&mut cmd);
        }
        self.members[i].child = Some(cmd.spawn().map_err(|e| format!("start etcd: {e}"))?);
        Ok(offset)
    }

    /// Waits for the member's "ready to serve client requests" line (written once the cluster
    /// has a leader) past `offset` in its log.
    fn wait_ready(&mut self, i: usize, offset: usize) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.log(i).get(offset..).is_some_and(|l| l.contains("ready to serve client requests")) {
                return Ok(());
            }
            let exited = self.members[i].child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.members[i].child = None;
                return Err(format!("etcd {} exited ({status}): {}", self.members[i].name, self.log(i)));
            }
            if Instant::now() >= deadline {
                self.kill_all();
                return Err(format!("etcd {} did not become ready: {}", self.members[i].name, self.log(i)));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The member's log so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    /// Client URLs, one per member.
    pub fn urls(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// `etcd:URL1,URL2,...`, as twill takes a datastore.
    pub fn endpoint(&self) -> String {
        format!("etcd:{}", self.urls().join(","))
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].child.as_ref().map(Child::id)
    }

    /// SIGKILL member `i` by its pid: an outage.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn kill_all(&mut self) {
        (0..self.members.len()).for_each(|i| self.kill(i));
    }

    /// Starts member `i` again with its data and waits until it serves.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        if let Err(why) = self.spawn(i).and_then(|offset| self.wait_ready(i, offset)) {
            panic!("{why}");
        }
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`) member `i`: a frozen server keeps its sockets
    /// open but answers nothing.
    pub fn freeze(&self, i: usize, frozen: bool) {
        let sig = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
        if let Some(pid) = self.pid(i) {
            // SAFETY: kill(2) on the pid of a child this harness started and has not reaped.
            unsafe { libc::kill(pid as libc::pid_t, sig) };
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.freeze(i, false);
        }
        self.kill_all();
    }
}
