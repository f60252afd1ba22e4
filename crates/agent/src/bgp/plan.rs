//! The BIRD configuration of one node, computed from the cluster without touching anything:
//!
//! - the node's pod subnets are announced from a static protocol (blackholes in BIRD's
//!   table only; the kernel export filter takes nothing but BGP routes);
//! - sessions to the other nodes: an iBGP full mesh by default; when any node is a route
//!   reflector, the others peer only with the reflectors, which peer with everyone and treat
//!   the non-reflectors of their AS as clients;
//! - sessions to the BGPPeers whose node selector matches this node;
//! - one session per address family: IPv4 routes over IPv4 sessions, IPv6 routes over
//!   sessions between the nodes' IPv6 underlay addresses;
//! - neighbours on a connected underlay network are `direct`; others are `multihop`, their
//!   next hops resolved through the routes BIRD learns from the kernel (the default route);
//! - BGP routes go into the kernel's main table with metric [`ROUTE_METRIC`] (protocol
//!   `bird`), except the pod subnets reached through vxlan (cross-subnet mode).

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use policy::Labels;

use crate::bgppeer::BgpPeer;
use crate::bird::config::{
    BgpSession, BgpTemplate, BirdConfig, Channel, Export, Family, Filter, Hop, Kernel, Neighbor, Rule,
    Static, session_name,
};

/// The metric of the routes BIRD puts into the kernel: with protocol `bird` (12), this is
/// how twill's BGP routes are told from everyone else's (`ip route show proto bird metric 116`).
pub const ROUTE_METRIC: u32 = 116;

/// The longest a BIRD started with `-R` holds back kernel synchronisation. BIRD waits for
/// End-of-RIB from every session, also one whose neighbour is down (a BGPPeer that does not
/// answer), and meanwhile installs nothing new; reachable neighbours are back within a few
/// seconds (connect at once, retry every 2 s), so 30 s covers them without freezing the node's
/// routes for the whole restart time.
pub const RECOVERY_WAIT_SECONDS: u32 = 30;

pub const FILTER_ANNOUNCE: &str = "twill_announce";
pub const FILTER_REFLECT: &str = "twill_reflect";
pub const FILTER_KERNEL: &str = "twill_kernel";

/// The static protocol announcing this node's pod subnets of `family`.
pub fn pods_protocol(family: Family) -> String {
    format!("twill_pods{}", family.digit())
}

/// A node as BGP sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpNode {
    pub name: String,
    pub ip: IpAddr,
    /// An IPv6 underlay address besides an IPv4 `ip` (dual stack).
    pub ip6: Option<IpAddr>,
    pub asn: u32,
    pub route_reflector: bool,
    /// Pod subnets, IPv4 and IPv6.
    pub subnets: Vec<IpNet>,
}

impl BgpNode {
    /// This node's underlay address of `family`.
    pub fn addr(&self, family: Family) -> Option<IpAddr> {
        [Some(self.ip), self.ip6].into_iter().flatten().find(|a| Family::of(*a) == family)
    }

    fn has_pods(&self, family: Family) -> bool {
        self.subnets.iter().any(|s| Family::of_net(s) == family)
    }
}

/// Timers and switches that hold for every session of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSettings {
    /// Full mesh between nodes when there are no route reflectors.
    pub mesh: bool,
    pub hold_seconds: u32,
    pub graceful_restart_seconds: u32,
    /// How often BIRD re-reads the kernel table, repairing routes someone deleted.
    pub scan_seconds: u32,
}

/// Everything the configuration depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInputs {
    pub local: BgpNode,
    pub labels: Labels,
    pub underlay_iface: String,
    /// The networks of the underlay interface's addresses: neighbours inside are direct.
    pub underlay_nets: Vec<IpNet>,
    pub peers: Vec<BgpNode>,
    pub bgp_peers: Vec<BgpPeer>,
    /// Pod subnets reached through vxlan: never put into the kernel by BIRD.
    pub vxlan_subnets: Vec<IpNet>,
    pub settings: SessionSettings,
}

/// The configuration and what was left out of it, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    pub config: BirdConfig,
    pub skipped: Vec<String>,
}

/// BGP router ids are 32 bits: the IPv4 underlay address, or the low 32 bits of an IPv6 one.
pub fn router_id(ip: IpAddr) -> Ipv4Addr {
    match ip {
        IpAddr::V4(a) => a,
        IpAddr::V6(a) => {
            let o = a.octets();
            Ipv4Addr::new(o[12], o[13], o[14], o[15])
        }
    }
}

/// The node's whole configuration.
pub fn plan_node(inputs: &NodeInputs) -> NodePlan {
    let local = &inputs.local;
    let families: Vec<Family> = [Family::V4, Family::V6].into_iter().filter(|f| local.has_pods(*f)).collect();
    let mut skipped = Vec::new();
    let mut sessions = mesh_sessions(inputs, &families);
    sessions.extend(peer_sessions(inputs, &families, &mut skipped));
    let config = BirdConfig {
        header: vec![
            format!("BIRD configuration of node {} ({}), written by twilld.", local.name, local.ip),
            "twilld rewrites it when the cluster changes and applies it with `birdc configure`;".into(),
            "edits are lost.".into(),
        ],
        router_id: router_id(local.ip),
        graceful_restart_wait: Some(inputs.settings.graceful_restart_seconds.min(RECOVERY_WAIT_SECONDS)),
        direct: vec![inputs.underlay_iface.clone()],
        kernel: Some(Kernel {
            families: families.clone(),
            metric: ROUTE_METRIC,
            export: Export::Filter(FILTER_KERNEL.into()),
            learn: true,
            persist: true,
            graceful_restart: true,
            scan_seconds: inputs.settings.scan_seconds,
        }),
        statics: families
            .iter()
            .map(|f| Static {
                name: pods_protocol(*f),
                comment: Some(format!("The pod subnets of {}, announced to every peer.", local.name)),
                family: *f,
                routes: local.subnets.iter().filter(|s| Family::of_net(s) == *f).copied().collect(),
            })
            .collect(),
        filters: filters(inputs, &families),
        template: Some(BgpTemplate {
            local_as: local.asn,
            hold_seconds: inputs.settings.hold_seconds,
            // Connect at once and retry every 2 s: a neighbour that is not up yet (a node
            // joining) is reached within 2 s of its BIRD starting, not BIRD's 5 s + 120 s.
            connect_delay_seconds: 0,
            connect_retry_seconds: 2,
            error_wait_seconds: (1, 30),
            graceful_restart_seconds: Some(inputs.settings.graceful_restart_seconds),
        }),
        sessions,
    };
    NodePlan { config, skipped }
}

fn filters(inputs: &NodeInputs, families: &[Family]) -> Vec<Filter> {
    let pods: Vec<String> = families.iter().map(|f| pods_protocol(*f)).collect();
    let mut vxlan = inputs.vxlan_subnets.clone();
    vxlan.sort();
    vxlan.dedup();
    let mut out = vec![Filter {
        name: FILTER_ANNOUNCE.into(),
        comment: Some("What this node announces: its own pod subnets.".into()),
        rules: vec![Rule::AcceptProtocols(pods.clone())],
    }];
    if inputs.local.route_reflector {
        out.push(Filter {
            name: FILTER_REFLECT.into(),
            comment: Some("A route reflector also passes on what it learned over BGP.".into()),
            rules: vec![Rule::AcceptProtocols(pods), Rule::AcceptBgp],
        });
    }
    out.push(Filter {
        name: FILTER_KERNEL.into(),
        comment: Some(if vxlan.is_empty() {
            "Into the kernel: routes learned over BGP.".into()
        } else {
            "Into the kernel: routes learned over BGP, but not the subnets reached through vxlan.".into()
        }),
        rules: vec![Rule::RejectNets(vxlan), Rule::AcceptBgp],
    });
    out
}

/// Which other nodes this node has sessions with, and whether each is a reflector client.
fn mesh_partners(inputs: &NodeInputs) -> Vec<(&BgpNode, bool)> {
    let local = &inputs.local;
    let reflectors = local.route_reflector || inputs.peers.iter().any(|p| p.route_reflector);
    let mut out: Vec<(&BgpNode, bool)> = inputs
        .peers
        .iter()
        .filter(|p| p.name != local.name)
        .filter_map(|p| match (local.route_reflector, reflectors) {
            (true, _) => Some((p, !p.route_reflector && p.asn == local.asn)),
            (false, true) => p.route_reflector.then_some((p, false)),
            (false, false) => inputs.settings.mesh.then_some((p, false)),
        })
        .collect();
    out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    out
}

fn hop(inputs: &NodeInputs, ip: IpAddr) -> Hop {
    if inputs.underlay_nets.iter().any(|n| n.contains(&ip)) { Hop::Direct } else { Hop::Multihop }
}

/// The export of an iBGP session of a reflector passes learned routes on; everything else
/// announces only the node's own subnets.
fn export_for(inputs: &NodeInputs, peer_asn: u32) -> Export {
    let reflect = inputs.local.route_reflector && peer_asn == inputs.local.asn;
    Export::Filter(if reflect { FILTER_REFLECT } else { FILTER_ANNOUNCE }.into())
}

fn mesh_sessions(inputs: &NodeInputs, families: &[Family]) -> Vec<BgpSession> {
    let mut out = Vec::new();
    for (peer, rr_client) in mesh_partners(inputs) {
        for f in families.iter().filter(|f| peer.has_pods(**f)) {
            let (Some(local_ip), Some(ip)) = (inputs.local.addr(*f), peer.addr(*f)) else { continue };
            let role = if peer.route_reflector { "route reflector" } else { "node" };
            out.push(BgpSession {
                name: session_name("mesh", ip),
                description: format!("{role} {}", peer.name),
                local_ip: Some(local_ip),
                neighbor: Neighbor::Addr { ip, asn: peer.asn },
                hop: hop(inputs, ip),
                rr_client,
                passive: false,
                password: None,
                channels: vec![Channel {
                    family: *f,
                    import: Export::All,
                    export: export_for(inputs, peer.asn),
                }],
            });
        }
    }
    out
}

fn peer_sessions(inputs: &NodeInputs, families: &[Family], skipped: &mut Vec<String>) -> Vec<BgpSession> {
    let node_ips: Vec<IpAddr> = inputs.peers.iter().flat_map(|p| [Some(p.ip), p.ip6]).flatten().collect();
    let mut peers: Vec<&BgpPeer> = inputs.bgp_peers.iter().filter(|p| p.selects(&inputs.labels)).collect();
    peers.sort_by(|a, b| (a.peer_ip, &a.name).cmp(&(b.peer_ip, &b.name)));
    let mut out: Vec<BgpSession> = Vec::new();
    for p in peers {
        let f = Family::of(p.peer_ip);
        let why = if [Some(inputs.local.ip), inputs.local.ip6].contains(&Some(p.peer_ip)) {
            Some("its peerIP is this node's own address")
        } else if node_ips.contains(&p.peer_ip) {
            Some("its peerIP is a node of the cluster, which the mesh or the route reflectors already cover")
        } else if !families.contains(&f) {
            Some("the cluster has no pods of its address family")
        } else if out.iter().any(|s| matches!(s.neighbor, Neighbor::Addr { ip, .. } if ip == p.peer_ip)) {
            Some("another BGPPeer has the same peerIP")
        } else {
            None
        };
        if let Some(why) = why {
            skipped.push(format!("BGPPeer {} ({}): {why}", p.name, p.peer_ip));
            continue;
        }
        out.push(BgpSession {
            name: session_name("peer", p.peer_ip),
            description: format!("BGPPeer {}", p.name),
            local_ip: inputs.local.addr(f),
            neighbor: Neighbor::Addr { ip: p.peer_ip, asn: p.asn },
            hop: hop(inputs, p.peer_ip),
            rr_client: false,
            passive: false,
            password: p.password.clone(),
            channels: vec![Channel {
                family: f,
                import: Export::All,
                export: Export::Filter(FILTER_ANNOUNCE.into()),
            }],
        });
    }
    out
}

#[cfg(test)]
#[path = "plan_tests.rs"]
pub(crate) mod tests;
