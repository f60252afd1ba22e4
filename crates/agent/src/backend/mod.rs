//! Backends: how a node reaches the other nodes' pod subnets. Each is a [`Backend`]; the
//! reconciler only calls the trait. host-gw and vxlan program kernel entries computed by the
//! pure planners in [`plan`] and applied by [`dataplane::Dataplane`]; the BGP backend
//! ([`crate::bgp`]) instead renders BIRD's configuration from the same peers and lets BIRD
//! exchange the routes.

pub mod dataplane;
mod hostgw;
pub mod plan;
pub mod vxlan;

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

use crate::bgp::status::BgpStatus;
use crate::bgp::{Bgp, BgpConf, PeerBgp};
use crate::bgppeer::BgpPeer;
use crate::record::{BackendKind, NodeRecord};

pub use hostgw::HostGw;
pub use vxlan::Vxlan;

/// This node, as the backend needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    pub node: String,
    pub node_ip: IpAddr,
    pub subnet: IpNet,
    pub subnet6: Option<IpNet>,
}

/// Another node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub node_ip: IpAddr,
    pub node_ip6: Option<IpAddr>,
    pub subnet: IpNet,
    pub subnet6: Option<IpNet>,
    pub vtep_mac: Option<[u8; 6]>,
    /// The peer's BGP AS and role, when its record publishes them (BGP backend).
    pub bgp: Option<PeerBgp>,
}

impl Peer {
    /// The peer a node record describes; an unreadable VTEP MAC is an error.
    pub fn from_record(r: &NodeRecord) -> Result<Peer, BackendError> {
        let vtep_mac = match &r.vtep_mac {
            Some(s) => Some(nl::parse_mac(s).map_err(|_| BackendError::BadPeer {
                node: r.name.clone(),
                reason: format!("vtep_mac {s:?} is not a MAC address"),
            })?),
            None => None,
        };
        Ok(Peer {
            name: r.name.clone(),
            node_ip: r.node_ip,
            node_ip6: r.node_ip6,
            subnet: r.subnet,
            subnet6: r.subnet6,
            vtep_mac,
            bgp: r.bgp.map(|b| PeerBgp { asn: b.asn, route_reflector: b.route_reflector }),
        })
    }
}

/// How many kernel entries a step added and removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub added: usize,
    pub removed: usize,
}

impl Applied {
    pub fn changed(&self) -> bool {
        self.added + self.removed > 0
    }
}

impl std::ops::AddAssign for Applied {
    fn add_assign(&mut self, o: Applied) {
        self.added += o.added;
        self.removed += o.removed;
    }
}

/// A way of reaching the peers. Every step is idempotent: calling it again changes nothing
/// when nothing drifted.
pub trait Backend: Send {
    fn kind(&self) -> BackendKind;
    /// The MTU pods should use on this backend.
    fn pod_mtu(&self) -> u32;
    /// The MAC other nodes must use for this node's VTEP, when the backend has one.
    fn vtep_mac(&self) -> Option<[u8; 6]>;
    /// Creates or repairs this node's own devices and addresses.
    fn ensure_local(&mut self, local: &Local) -> Result<Applied, BackendError>;
    /// Adds what reaching `peer` needs and is missing.
    fn ensure_peer(&mut self, peer: &Peer) -> Result<Applied, BackendError>;
    /// Removes what reaching `peer` needed.
    fn remove_peer(&mut self, peer: &Peer) -> Result<Applied, BackendError>;
    /// Makes the kernel match exactly `peers`: adds what is missing, removes what belongs to
    /// nodes not among them.
    fn sync(&mut self, peers: &[Peer]) -> Result<Applied, BackendError>;
    /// This node's labels and the cluster's BGPPeers, before `sync` (BGP backend only).
    fn set_bgp_inputs(&mut self, _labels: &policy::Labels, _bgp_peers: &[BgpPeer]) {}
    /// BIRD's sessions and routes, for `/bgp` and `/metrics` (BGP backend only).
    fn bgp_status(&self) -> Option<BgpStatus> {
        None
    }
    /// The node leaves the cluster: stop what the backend runs (BIRD). Kernel state stays.
    fn shutdown(&mut self) {}
}

/// What a backend is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConf {
    pub node: String,
    pub node_ip: IpAddr,
    pub underlay: String,
    /// Where the backend remembers what it created (the vxlan device's parameters, BIRD's
    /// files).
    pub state_dir: PathBuf,
    /// The BGP backend's settings.
    pub bgp: Option<BgpConf>,
}

/// The backend of `kind`, in the calling thread's network namespace (where the BGP
/// backend's BIRD will run).
pub fn build(kind: BackendKind, conf: &BackendConf) -> Result<Box<dyn Backend>, BackendError> {
    match kind {
        BackendKind::HostGw => Ok(Box::new(HostGw::new(conf)?)),
        BackendKind::Vxlan => Ok(Box::new(Vxlan::new(conf)?)),
        BackendKind::Bgp => Ok(Box::new(Bgp::new(conf)?)),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("the bgp backend needs its BGP settings")]
    NoBgpSettings,
    #[error("open this node's network namespace: {0}")]
    Netns(String),
    #[error("BIRD: {0}")]
    Bird(String),
    #[error("the BIRD daemon {} was not found (Debian package bird2; scripts/install-deps.sh installs it, --bird names another)", .bird.display())]
    NoBird { bird: PathBuf },
    #[error("underlay interface {name} not found")]
    NoUnderlay { name: String },
    #[error("{name} exists but is a {kind} device, not vxlan; remove it or rename it")]
    ForeignDevice { name: String, kind: String },
    #[error("{what} is not set up yet (ensure_local comes first)")]
    NotSetUp { what: &'static str },
    #[error("peer {node}: {reason}")]
    BadPeer { node: String, reason: String },
    #[error("{op} {}: {source}", .path.display())]
    State { op: &'static str, path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Netlink(#[from] nl::Error),
}
