//! A small cluster in namespaces: an underlay namespace with bridge `br0` (10.99.0.1/24),
//! node namespaces joined to it by veth pairs (`eth0`, 10.99.0.1N/24), and one twilld per
//! node started inside its namespace. Agents are killed by pid and namespaces deleted on
//! drop, also when the test fails.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use testkit::TestNs;
use twill_agent::record::NodeRecord;
use twill_agent::registry::Registry;
use twill_agent::store::{Datastore, FileStore};

use super::{EtcdCluster, EtcdOpts, TempDir, etcd_store};

pub const UNDERLAY_IP: &str = "10.99.0.1";
/// Generous: the kernel work of other tests running at the same time (RTNL is one lock for
/// every namespace) can slow everything down.
const WAIT: Duration = Duration::from_secs(30);

/// Which datastore the nodes share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    File,
    Etcd,
}

/// A running twilld, killed by pid on drop.
struct AgentProc(Child);

impl AgentProc {
    fn signal(&self, sig: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.0.id()).expect("pid fits"));
        let _ = kill(pid, sig);
    }

    /// Waits up to `limit` for the process to exit.
    fn wait_exit(&mut self, limit: Duration) -> bool {
        testkit::wait_until(limit, || self.0.try_wait().ok().flatten().is_some())
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Node {
    agent: Option<AgentProc>,
    pub name: String,
    pub ip: String,
    pub ns: TestNs,
    pub dir: TempDir,
    /// Where the agent's sd_notify messages arrive (its NOTIFY_SOCKET).
    notify: UnixDatagram,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub etcd: Option<EtcdCluster>,
    pub store_dir: TempDir,
    pub underlay: TestNs,
    pub backend: &'static str,
    pub ttl: u64,
    pub extra: Vec<String>,
}

impl Cluster {
    pub fn new(tag: &str, n: usize, backend: &'static str, store: Store, ttl: u64) -> Cluster {
        testkit::require_privileges();
        let underlay = TestNs::new(&format!("{tag}u"));
        let h = underlay.handle();
        let br = h.bridge_ensure("br0", None, None).expect("underlay bridge");
        h.addr_add(br.index, format!("{UNDERLAY_IP}/24").parse().unwrap(), false).expect("bridge address");
        h.link_set_up(br.index, true).expect("bridge up");
        let mut c = Cluster {
            nodes: Vec::new(),
            etcd: None,
            store_dir: TempDir::new("cluster-store"),
            underlay,
            backend,
            ttl,
            extra: Vec::new(),
        };
        for i in 0..n {
            c.add_node(&format!("{tag}n{i}"), i);
        }
        if store == Store::Etcd {
            let opts = EtcdOpts { members: 1, hosts: Some(vec![(UNDERLAY_IP.to_string(), 2379)]), tls: None };
            c.etcd = Some(EtcdCluster::start_with(opts, Some(c.underlay.ns())));
        }
        c
    }

    fn add_node(&mut self, tag: &str, i: usize) {
        let ns = TestNs::new(tag);
        let ip = format!("10.99.0.{}", 11 + i);
        let uh = self.underlay.handle();
        let port = format!("n{i}");
        uh.veth_add(&port, "eth0", Some(ns.ns()), None, None, None).expect("veth to node");
        let port_link = uh.link_get(&port).unwrap().expect("underlay port");
        let br = uh.link_get("br0").unwrap().expect("bridge");
        uh.link_set_master(port_link.index, Some(br.index)).expect("enslave port");
        uh.link_set_up(port_link.index, true).expect("port up");
        let nh = ns.handle();
        let eth0 = nh.link_get("eth0").unwrap().expect("node eth0");
        nh.addr_add(eth0.index, format!("{ip}/24").parse().unwrap(), false).expect("node address");
        nh.link_set_up(eth0.index, true).expect("eth0 up");
        let name = format!("node-{i}");
        let dir = TempDir::new("node");
        let notify = UnixDatagram::bind(dir.path().join("notify.sock")).expect("bind notify socket");
        notify.set_nonblocking(true).expect("non-blocking notify socket");
        self.nodes.push(Node { agent: None, name, ip, ns, dir, notify });
    }

    pub fn datastore(&self) -> String {
        match &self.etcd {
            Some(e) => e.endpoint(),
            None => format!("file:{}", self.store_dir.path().display()),
        }
    }

    /// Node `i`'s settings, as flag names and values.
    fn settings(&self, i: usize) -> Vec<(&'static str, String)> {
        let n = &self.nodes[i];
        let d = n.dir.path();
        vec![
            ("--node", n.name.clone()),
            ("--node-ip", n.ip.clone()),
            ("--underlay-iface", "eth0".into()),
            ("--datastore", self.datastore()),
            ("--backend", self.backend.into()),
            ("--cluster-cidr", "10.244.0.0/16".into()),
            ("--cni-conf-dir", d.join("net.d").display().to_string()),
            ("--cni-bin-dir", d.join("bin").display().to_string()),
            ("--state-dir", d.join("state").display().to_string()),
            ("--resync-seconds", "1".into()),
            ("--lease-ttl-seconds", self.ttl.to_string()),
        ]
    }

    /// Starts twilld in node `i` with its settings as flags; its log goes to the node's
    /// directory.
    pub fn start(&mut self, i: usize) {
        let args: Vec<String> = self.settings(i).into_iter().flat_map(|(k, v)| [k.to_string(), v]).collect();
        self.spawn(i, args);
    }

    /// Starts twilld in node `i` with its settings in a `--config` file (the extra
    /// arguments stay flags).
    pub fn start_from_file(&mut self, i: usize) {
        let toml: String = self
            .settings(i)
            .into_iter()
            .map(|(k, v)| format!("{} = {}\n", k.trim_start_matches('-'), serde_json::Value::from(v)))
            .collect();
        let path = self.nodes[i].dir.path().join("twilld.toml");
        std::fs::write(&path, toml).expect("write config file");
        self.spawn(i, vec!["--config".into(), path.display().to_string()]);
    }

    fn spawn(&mut self, i: usize, mut args: Vec<String>) {
        args.extend(self.extra.iter().cloned());
        let log_path = self.nodes[i].dir.path().join("twilld.log");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_twilld"));
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        cmd.env("NOTIFY_SOCKET", self.nodes[i].dir.path().join("notify.sock"));
        for var in ["TWILL_DATASTORE", "TWILL_ETCD_CACERT", "TWILL_ETCD_CERT", "TWILL_ETCD_KEY"] {
            cmd.env_remove(var);
        }
        self.nodes[i].ns.ns().spawn_inside(&mut cmd);
        let child = cmd.spawn().expect("spawn twilld");
        self.nodes[i].agent = Some(AgentProc(child));
    }

    /// SIGTERM: the node leaves the cluster.
    pub fn stop(&mut self, i: usize) {
        let mut a = self.nodes[i].agent.take().expect("agent running");
        a.signal(Signal::SIGTERM);
        assert!(a.wait_exit(Duration::from_secs(15)), "twilld on node {i} ignored SIGTERM:\n{}", self.log(i));
        let status = a.0.try_wait().ok().flatten();
        assert!(
            status.is_some_and(|s| s.success()),
            "twilld on node {i} exited with {status:?}:\n{}",
            self.log(i)
        );
    }

    /// SIGKILL: the node crashes without leaving.
    pub fn crash(&mut self, i: usize) {
        drop(self.nodes[i].agent.take());
    }

    /// The sd_notify messages node `i`'s agents sent since the last call.
    pub fn notifications(&self, i: usize) -> String {
        let mut out = String::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.nodes[i].notify.recv(&mut buf) {
            out.push_str(&String::from_utf8_lossy(&buf[..n]));
            out.push('\n');
        }
        out
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.nodes[i].dir.path().join("twilld.log")).unwrap_or_default()
    }

    /// GET `path` from node `i`'s health endpoint: status and body.
    pub fn http_get(&self, i: usize, path: &str) -> Option<(u16, String)> {
        let exchange = || -> std::io::Result<String> {
            let addr = "127.0.0.1:9099".parse().unwrap();
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        };
        let raw = self.nodes[i].ns.ns().run(exchange).ok()?.ok()?;
        let status = raw.split(' ').nth(1)?.parse().ok()?;
        let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        Some((status, body))
    }

    pub fn wait_ready(&self, i: usize) {
        let ok = testkit::wait_until(WAIT, || self.http_get(i, "/readyz").is_some_and(|(s, _)| s == 200));
        assert!(ok, "node {i} never became ready:\n{}", self.log(i));
    }

    /// The node records in the datastore.
    pub fn records(&self) -> Vec<NodeRecord> {
        let read = |s: &dyn Datastore| Registry::new(s).nodes().expect("read node records").items;
        match &self.etcd {
            Some(e) => read(etcd_store(e, Some(self.underlay.ns())).as_ref()),
            None => read(&FileStore::open(self.store_dir.path()).expect("open file store")),
        }
    }

    pub fn record(&self, i: usize) -> NodeRecord {
        let name = &self.nodes[i].name;
        self.records().into_iter().find(|r| &r.name == name).unwrap_or_else(|| panic!("no record of {name}"))
    }

    /// Waits until `f` holds, or fails with every node's log (node `i`'s first).
    pub fn eventually(&self, i: usize, what: &str, f: impl FnMut() -> bool) {
        if testkit::wait_until(WAIT, f) {
            return;
        }
        let others: String = (0..self.nodes.len())
            .filter(|j| *j != i)
            .map(|j| format!("\nlog of node {j}:\n{}", self.log(j)))
            .collect();
        panic!("{what}: timed out; log of node {i}:\n{}{others}", self.log(i));
    }
}

/// twill's routes (`proto 116`) in `ns`, as `(dst, gw, oif)`.
pub fn twill_routes(ns: &TestNs) -> Vec<(String, String, u32)> {
    let mut v: Vec<_> = ns
        .handle()
        .route_list(None, Some(254))
        .expect("list routes")
        .into_iter()
        .filter(|r| r.protocol == Some(116))
        .map(|r| (r.dst.to_string(), r.gw.map(|g| g.to_string()).unwrap_or_default(), r.oif.unwrap_or(0)))
        .collect();
    v.sort();
    v
}

pub fn ping(ns: &TestNs, dst: &str) -> bool {
    // Until one echo is answered, for up to 3 s.
    ns.exec(&["ping", "-c", "1", "-w", "3", dst]).status.success()
}
