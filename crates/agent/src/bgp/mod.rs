//! The BGP backend (Calico's non-overlay model): pod subnets are routed, not encapsulated,
//! and the routes are exchanged by BIRD, which twill configures and supervises but never
//! replaces with protocol code of its own.
//!
//! Each pass the backend computes BIRD's whole configuration from the cluster
//! ([`plan::plan_node`]: the node's pod subnets, the other nodes as a full iBGP mesh or
//! through route reflectors, the BGPPeers selecting this node), and if it changed, BIRD
//! applies it with `configure` ([`speaker`]). BIRD puts what it learns into the kernel with
//! protocol `bird` and metric [`plan::ROUTE_METRIC`]; when a node leaves, the datastore
//! drops it from every configuration and its BIRD's sessions close, so its routes are
//! withdrawn everywhere.
//!
//! Graceful restart: BIRD runs with `graceful restart on` and keeps its kernel routes when it
//! stops (`persist`). If BIRD or the agent dies, the peers keep the node's routes as stale
//! for the restart time, and the next BIRD is started with `-R`, which holds back kernel
//! synchronisation until its sessions are back: no route is withdrawn, anywhere, by a
//! restart shorter than the restart timer.
//!
//! Cross-subnet mode (Calico's CrossSubnet): peers on another underlay network are reached
//! through vxlan (the [`Vxlan`] backend, restricted to them), the others by BGP routes.

pub mod conf;
pub mod kernel;
pub mod metrics;
pub mod plan;
pub mod speaker;
pub mod status;

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use netns::NetNs;
use nl::Handle;
use policy::Labels;

use crate::backend::dataplane::Dataplane;
use crate::backend::plan::Plan;
use crate::backend::{Applied, Backend, BackendConf, BackendError, Local, Peer, Vxlan};
use crate::bgppeer::BgpPeer;
use crate::bird::BirdFiles;
use crate::record::BackendKind;
pub use conf::{BgpConf, ROUTE_REFLECTOR_LABEL};
use plan::{BgpNode, NodeInputs, SessionSettings, plan_node};
use speaker::Speaker;
use status::{BgpStatus, Session};

/// `program` as given when it names a file, else the first file of that name on `PATH`.
fn find_program(program: &std::path::Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}

/// The BGP side of another node, as its node record publishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerBgp {
    pub asn: u32,
    pub route_reflector: bool,
}

/// The BGP backend.
pub struct Bgp {
    conf: BgpConf,
    node_ip: IpAddr,
    underlay: String,
    dp: Dataplane,
    vxlan: Option<Vxlan>,
    speaker: Speaker,
    local: Option<Local>,
    labels: Labels,
    /// The underlay interface's global addresses, with their prefix lengths.
    underlay_addrs: Vec<IpNet>,
    underlay_nets: Vec<IpNet>,
    underlay_mtu: u32,
    peers: Vec<Peer>,
    bgp_peers: Vec<BgpPeer>,
    /// The BGPPeers left out of the last configuration, logged when they change.
    skipped: Vec<String>,
    status: BgpStatus,
}

impl std::fmt::Debug for Bgp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bgp").field("conf", &self.conf).field("speaker", &self.speaker).finish()
    }
}

impl Bgp {
    /// The backend for the calling thread's network namespace, where BIRD will run.
    pub fn new(conf: &BackendConf) -> Result<Bgp, BackendError> {
        let bgp = conf.bgp.clone().ok_or(BackendError::NoBgpSettings)?;
        let bird = find_program(&bgp.bird).ok_or_else(|| BackendError::NoBird { bird: bgp.bird.clone() })?;
        let netns = NetNs::current().map_err(|e| BackendError::Netns(e.to_string()))?;
        let files = BirdFiles::new(conf.state_dir.join("bird"));
        let vxlan = if bgp.cross_subnet_vxlan { Some(Vxlan::new(conf)?) } else { None };
        let mut b = Bgp {
            speaker: Speaker::new(bird, files, netns),
            conf: bgp,
            node_ip: conf.node_ip,
            underlay: conf.underlay.clone(),
            dp: Dataplane::new(Handle::new()?),
            vxlan,
            local: None,
            labels: Labels::new(),
            underlay_addrs: Vec::new(),
            underlay_nets: Vec::new(),
            underlay_mtu: 0,
            peers: Vec::new(),
            bgp_peers: Vec::new(),
            skipped: Vec::new(),
            status: BgpStatus::default(),
        };
        b.refresh_underlay()?;
        Ok(b)
    }

    fn refresh_underlay(&mut self) -> Result<(), BackendError> {
        let h = self.dp.handle();
        let link = h
            .link_get(&self.underlay)?
            .ok_or_else(|| BackendError::NoUnderlay { name: self.underlay.clone() })?;
        self.underlay_mtu = link.mtu;
        self.underlay_addrs = kernel::addresses(h, &self.underlay)?;
        let mut nets: Vec<IpNet> = self.underlay_addrs.iter().map(IpNet::trunc).collect();
        nets.sort();
        nets.dedup();
        self.underlay_nets = nets;
        Ok(())
    }

    /// The files of this node's BIRD (configuration, control socket, log).
    pub fn files(&self) -> &BirdFiles {
        self.speaker.files()
    }

    /// Peers on another underlay network, reached through vxlan in cross-subnet mode.
    fn across_subnets<'a>(&self, peers: &'a [Peer]) -> Vec<&'a Peer> {
        if self.vxlan.is_none() {
            return Vec::new();
        }
        peers.iter().filter(|p| !self.underlay_nets.iter().any(|n| n.contains(&p.node_ip))).collect()
    }

    /// The peer as a BGP neighbour; `None` for a node of another backend, which runs no BIRD.
    fn bgp_node(p: &Peer) -> Option<BgpNode> {
        let bgp = p.bgp?;
        Some(BgpNode {
            name: p.name.clone(),
            ip: p.node_ip,
            ip6: p.node_ip6,
            asn: bgp.asn,
            route_reflector: bgp.route_reflector,
            subnets: [Some(p.subnet), p.subnet6].into_iter().flatten().collect(),
        })
    }

    fn is_route_reflector(&self) -> bool {
        self.conf.is_route_reflector(&self.labels)
    }

    fn inputs(&self, local: &Local) -> NodeInputs {
        let vxlan_subnets = self
            .across_subnets(&self.peers)
            .iter()
            .flat_map(|p| [Some(p.subnet), p.subnet6])
            .flatten()
            .collect();
        NodeInputs {
            local: BgpNode {
                name: local.node.clone(),
                ip: self.node_ip,
                ip6: self.local_ip6(),
                asn: self.conf.asn(),
                route_reflector: self.is_route_reflector(),
                subnets: [Some(local.subnet), local.subnet6].into_iter().flatten().collect(),
            },
            labels: self.labels.clone(),
            underlay_iface: self.underlay.clone(),
            underlay_nets: self.underlay_nets.clone(),
            peers: self.peers.iter().filter_map(Bgp::bgp_node).collect(),
            bgp_peers: self.bgp_peers.clone(),
            vxlan_subnets,
            settings: SessionSettings {
                mesh: self.conf.mesh,
                hold_seconds: self.conf.hold_seconds,
                graceful_restart_seconds: self.conf.graceful_restart_seconds,
                scan_seconds: self.conf.scan_seconds,
            },
        }
    }

    /// This node's IPv6 underlay address, when it has one besides an IPv4 node address.
    fn local_ip6(&self) -> Option<IpAddr> {
        let ip6 = self.underlay_addrs.iter().map(|a| a.addr()).find(IpAddr::is_ipv6);
        ip6.filter(|_| self.node_ip.is_ipv4())
    }

    /// Renders the configuration for the current peers and makes BIRD run it.
    fn apply(&mut self) -> Result<(), BackendError> {
        let local = self.local.clone().ok_or(BackendError::NotSetUp { what: "the BGP backend's node" })?;
        let plan = plan_node(&self.inputs(&local));
        if plan.skipped != self.skipped {
            for s in plan.skipped.iter().filter(|s| !self.skipped.contains(s)) {
                tracing::warn!(reason = %s, "BGPPeer left out");
            }
            self.skipped = plan.skipped.clone();
        }
        let text = plan.config.render();
        let dp = &self.dp;
        let changed = self
            .speaker
            .ensure(&text, || kernel::bgp_routes(dp.handle()).is_ok_and(|r| !r.is_empty()))
            .map_err(|e| BackendError::Bird(e.to_string()))?;
        if changed {
            let sessions = plan.config.sessions.len();
            tracing::info!(sessions, file = %self.files().config().display(), "BIRD configuration applied");
        }
        Ok(())
    }

    /// Reads BIRD's sessions and the kernel's BGP routes into the status.
    fn refresh_status(&mut self) {
        let state = self.speaker.supervisor().map(|s| s.state()).unwrap_or_default();
        let mut status = BgpStatus {
            router_id: plan::router_id(self.node_ip).to_string(),
            local_as: self.conf.asn(),
            route_reflector: self.is_route_reflector(),
            bird_pid: state.pid,
            bird_restarts: state.restarts,
            reconfigurations: self.speaker.reconfigurations,
            reconfiguration_errors: self.speaker.reconfiguration_errors,
            kernel_routes: kernel::bgp_routes(self.dp.handle()).map(|r| r.len()).unwrap_or(0),
            ..BgpStatus::default()
        };
        match self.speaker.protocols() {
            Ok(ps) => {
                status.sessions = ps
                    .iter()
                    .filter(|p| p.is_bgp() && !p.is_dynamic_template())
                    .map(Session::from_protocol)
                    .collect()
            }
            Err(e) => status.error = Some(e.to_string()),
        }
        self.status = status;
    }

    /// The vxlan entries for the peers across subnets; without vxlan, none: twill's
    /// protocol-116 routes left by another backend are removed.
    fn sync_vxlan(&mut self) -> Result<Applied, BackendError> {
        let across: Vec<Peer> = self.across_subnets(&self.peers).into_iter().cloned().collect();
        match &mut self.vxlan {
            Some(v) => v.sync(&across),
            None => self.dp.sync(&Plan::default(), None),
        }
    }
}

impl Backend for Bgp {
    fn kind(&self) -> BackendKind {
        BackendKind::Bgp
    }

    fn pod_mtu(&self) -> u32 {
        match &self.vxlan {
            Some(v) => v.pod_mtu(),
            None => self.underlay_mtu,
        }
    }

    fn vtep_mac(&self) -> Option<[u8; 6]> {
        self.vxlan.as_ref().and_then(|v| v.vtep_mac())
    }

    fn ensure_local(&mut self, local: &Local) -> Result<Applied, BackendError> {
        self.refresh_underlay()?;
        self.local = Some(local.clone());
        match &mut self.vxlan {
            Some(v) => v.ensure_local(local),
            None => Ok(Applied::default()),
        }
    }

    fn ensure_peer(&mut self, peer: &Peer) -> Result<Applied, BackendError> {
        self.peers.retain(|p| p.name != peer.name);
        self.peers.push(peer.clone());
        self.apply()?;
        Ok(Applied::default())
    }

    fn remove_peer(&mut self, peer: &Peer) -> Result<Applied, BackendError> {
        self.peers.retain(|p| p.name != peer.name);
        self.apply()?;
        Ok(Applied::default())
    }

    fn sync(&mut self, peers: &[Peer]) -> Result<Applied, BackendError> {
        self.peers = peers.to_vec();
        let done = self.sync_vxlan();
        let applied = self.apply();
        self.refresh_status();
        applied?;
        done
    }

    fn set_bgp_inputs(&mut self, labels: &Labels, bgp_peers: &[BgpPeer]) {
        self.labels = labels.clone();
        self.bgp_peers = bgp_peers.to_vec();
    }

    fn bgp_status(&self) -> Option<BgpStatus> {
        Some(self.status.clone())
    }

    fn shutdown(&mut self) {
        if let Err(e) = self.speaker.stop() {
            tracing::warn!(error = %e, "stopping BIRD");
        }
    }
}
