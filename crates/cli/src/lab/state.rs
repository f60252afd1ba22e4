//! The lab's memory between invocations: `STATE_DIR/state.json`, written atomically
//! (write-then-rename) under an exclusive lock, so concurrent `twill lab pod add` calls
//! serialise and a crash leaves either the old or the new state, never half of one.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::names::{Names, PodRef};
use super::process::Proc;

/// How nodes reach each other's pod subnets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    HostGw,
    Vxlan,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::HostGw => "host-gw",
            Backend::Vxlan => "vxlan",
        }
    }
}

/// Where the agents keep cluster state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DatastoreKind {
    File,
    Etcd,
}

/// What `twill lab up` was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabOptions {
    pub nodes: u8,
    pub backend: Backend,
    pub datastore: DatastoreKind,
    pub ipv6: bool,
    /// Members of the etcd cluster (with the etcd datastore).
    #[serde(default = "one")]
    pub etcd_members: u8,
    /// twilld's `--lease-ttl-seconds`.
    #[serde(default = "thirty")]
    pub lease_ttl: u32,
}

fn one() -> u8 {
    1
}

fn thirty() -> u32 {
    30
}

/// One node: a namespace running twilld.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    pub index: u8,
    /// The node's name in the cluster (`node-1`).
    pub name: String,
    pub netns: String,
    pub ip: Ipv4Addr,
    pub ip6: Option<Ipv6Addr>,
    /// twilld's `--cni-conf-dir`, where it writes the node's network lists.
    pub conf_dir: PathBuf,
    /// twilld's `--state-dir`.
    pub agent_dir: PathBuf,
    pub agent: Option<Proc>,
}

/// One pod: a namespace attached by the node's CNI configuration, running `twill lab serve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodState {
    pub ns: String,
    pub name: String,
    pub netns: String,
    pub node: u8,
    pub container_id: String,
    pub ips: Vec<IpAddr>,
    pub server: Option<Proc>,
}

impl PodState {
    pub fn pod_ref(&self) -> PodRef {
        PodRef { ns: self.ns.clone(), name: self.name.clone() }
    }

    /// The pod's first address of the family asked for.
    pub fn ip(&self, v6: bool) -> Option<IpAddr> {
        self.ips.iter().copied().find(|ip| ip.is_ipv6() == v6)
    }
}

/// One etcd member of a lab with the etcd datastore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdMember {
    pub netns: String,
    /// The client URL, reachable from every node.
    pub url: String,
    pub proc: Option<Proc>,
}

/// The etcd cluster of a lab with the etcd datastore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdState {
    pub members: Vec<EtcdMember>,
}

impl EtcdState {
    /// The namespace the lab itself uses the datastore from (the first member's).
    pub fn netns(&self) -> &str {
        self.members.first().map_or("", |m| m.netns.as_str())
    }
}

/// Everything a later invocation needs to find, use and tear down the lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabState {
    pub prefix: String,
    pub options: LabOptions,
    /// Every namespace created so far, in creation order.
    pub netns: Vec<String>,
    pub nodes: Vec<NodeState>,
    pub etcd: Option<EtcdState>,
    /// The server in the outside namespace.
    pub outside_server: Option<Proc>,
    /// `NS/NAME` → pod.
    pub pods: BTreeMap<String, PodState>,
}

impl LabState {
    pub fn node(&self, index: u8) -> Result<&NodeState> {
        self.nodes
            .iter()
            .find(|n| n.index == index)
            .with_context(|| format!("the lab has no node {index} (nodes are 1..={})", self.nodes.len()))
    }

    pub fn pod(&self, pod: &PodRef) -> Result<&PodState> {
        self.pods.get(&pod.to_string()).with_context(|| format!("the lab has no pod {pod}"))
    }

    /// Every process the lab recorded, for teardown.
    pub fn processes(&self) -> Vec<&Proc> {
        let agents = self.nodes.iter().filter_map(|n| n.agent.as_ref());
        let servers = self.pods.values().filter_map(|p| p.server.as_ref());
        let etcd = self.etcd.iter().flat_map(|e| e.members.iter().filter_map(|m| m.proc.as_ref()));
        agents.chain(servers).chain(self.outside_server.iter()).chain(etcd).collect()
    }
}

/// The lab's state directory, with its lock held while this lives.
pub struct StateDir {
    pub dir: PathBuf,
    _lock: Flock<File>,
}

impl StateDir {
    /// Locks the state directory, creating it when `create`; fails when there is no lab and
    /// `create` is false.
    pub fn lock(names: &Names, create: bool) -> Result<StateDir> {
        let dir = names.state_dir();
        if create {
            std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        } else if !dir.is_dir() {
            bail!("no lab is up ({} does not exist); start one with `twill lab up`", dir.display());
        }
        let path = dir.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .with_context(|| format!("lock {}", path.display()))?;
        Ok(StateDir { dir, _lock: lock })
    }

    pub fn state_file(&self) -> PathBuf {
        state_file(&self.dir)
    }

    pub fn load(&self) -> Result<LabState> {
        load(&self.dir)?.with_context(|| {
            format!("{} is missing: the lab is broken, run `twill lab down`", self.state_file().display())
        })
    }

    /// Atomically replaces the state file.
    pub fn save(&self, state: &LabState) -> Result<()> {
        let path = self.state_file();
        let tmp = self.dir.join(".state.json.tmp");
        let bytes = serde_json::to_vec_pretty(state)?;
        std::fs::write(&tmp, bytes).with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("replace {}", path.display()))
    }
}

fn state_file(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

/// Reads the state without taking the lock (the file is only ever replaced by rename).
/// `None` when there is no state file.
pub fn load(dir: &Path) -> Result<Option<LabState>> {
    let path = state_file(dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    serde_json::from_slice(&bytes).map(Some).with_context(|| format!("parse {}", path.display()))
}

/// The state of a running lab, for read-only commands.
pub fn load_running(names: &Names) -> Result<LabState> {
    let dir = names.state_dir();
    load(&dir)?.with_context(|| {
        format!("no lab is up ({} has no state); start one with `twill lab up`", dir.display())
    })
}
