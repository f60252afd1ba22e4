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
    Bgp,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::HostGw => "host-gw",
            Backend::Vxlan => "vxlan",
            Backend::Bgp => "bgp",
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
    /// Underlay segments joined by a router; 0: one flat segment.
    #[serde(default)]
    pub racks: u8,
    /// The outside host peers with the cluster (bgp): it learns the pod subnets, and the
    /// nodes do not masquerade.
    #[serde(default)]
    pub outside_bgp: bool,
    /// Nodes 1..=K are route reflectors (bgp).
    #[serde(default)]
    pub route_reflectors: u8,
    /// vxlan between racks, routes inside a rack (bgp, Calico's CrossSubnet).
    #[serde(default)]
    pub cross_subnet: bool,
    /// Members of the etcd cluster (with the etcd datastore).
    #[serde(default = "one")]
    pub etcd_members: u8,
    /// twilld's `--lease-ttl-seconds`.
    #[serde(default = "thirty")]
    pub lease_ttl: u32,
    /// twilld's `--flow-logs` (`off`, `denied`, `all`); none: twilld's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_logs: Option<String>,
}

fn one() -> u8 {
    1
}

fn thirty() -> u32 {
    30
}

impl LabOptions {
    /// A lab of `nodes` on one flat segment, without BGP options.
    pub fn flat(nodes: u8, backend: Backend, datastore: DatastoreKind, ipv6: bool) -> LabOptions {
        LabOptions {
            nodes,
            backend,
            datastore,
            ipv6,
            racks: 0,
            outside_bgp: false,
            route_reflectors: 0,
            cross_subnet: false,
            etcd_members: 1,
            lease_ttl: 30,
            flow_logs: None,
        }
    }

    pub fn shape(&self) -> super::topology::Shape {
        super::topology::Shape {
            nodes: self.nodes,
            racks: self.racks,
            ipv6: self.ipv6,
            etcd_members: if self.datastore == DatastoreKind::Etcd { self.etcd_members } else { 0 },
        }
    }
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
    /// Its rack, in a lab with racks.
    #[serde(default)]
    pub rack: Option<u8>,
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

/// A BIRD the lab runs itself: the router's, the outside host's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BirdState {
    /// `router` or `outside`.
    pub place: String,
    pub netns: String,
    /// Its configuration, control socket, pid file and log.
    pub dir: PathBuf,
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
    /// BIRDs of the router and the outside host (bgp).
    #[serde(default)]
    pub birds: Vec<BirdState>,
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
        let birds = self.birds.iter().filter_map(|b| b.proc.as_ref());
        agents.chain(servers).chain(self.outside_server.iter()).chain(etcd).chain(birds).collect()
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
