//! The lab's wiring, planned without touching anything: an underlay namespace holding the
//! L2 segments (bridges), and on them one namespace per machine — the nodes, the "outside"
//! host that stands in for the internet, the etcd host (with the etcd datastore) and, with
//! racks, the router.
//!
//! Flat (the default): one segment `br0`, 10.100.0.0/24; nodes at .(10+N), the outside host
//! at .254 is their default gateway. With `--racks R`: the nodes are split over R segments
//! (`br1`..`brR`, 10.100.R.0/24, nodes at 10.100.R.(10+N)), joined by a router namespace
//! (10.100.R.1 on each rack, 10.100.0.1 on the core segment `br0` where the outside host and
//! etcd live); the router stands in for the top-of-rack/physical network, and its default
//! route leads to the outside host. `underlay::apply_topology` creates what this plans.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::names::Names;

/// Every machine's link to the underlay (a node's `--underlay-iface`).
pub const UPLINK: &str = "eth0";
/// The most nodes a lab has: node addresses are .11 up to .(10+N).
pub const MAX_NODES: u8 = 200;
/// The most racks: one /24 each, under 10.100.0.0/16.
pub const MAX_RACKS: u8 = 16;
pub const PREFIX4: u8 = 24;
pub const PREFIX6: u8 = 64;

/// The outside host: the internet, on the core segment.
pub const OUTSIDE_IP: Ipv4Addr = Ipv4Addr::new(10, 100, 0, 254);
pub const OUTSIDE_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x100, 0, 0, 0, 0, 0, 0x254);
/// The router's address on the core segment.
pub const ROUTER_IP: Ipv4Addr = Ipv4Addr::new(10, 100, 0, 1);
pub const ROUTER_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x100, 0, 0, 0, 0, 0, 1);

/// What the underlay looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub nodes: u8,
    /// 0: one flat segment, no router.
    pub racks: u8,
    pub ipv6: bool,
    /// etcd members, on the core segment (10.100.0.253, .252, ...).
    pub etcd_members: u8,
}

/// The rack of node `index` (1-based): consecutive nodes share a rack, racks as even as
/// can be. `None` on a flat underlay.
pub fn rack_of(index: u8, shape: &Shape) -> Option<u8> {
    if shape.racks == 0 || shape.nodes == 0 {
        return None;
    }
    let r = u16::from(index.saturating_sub(1)) * u16::from(shape.racks) / u16::from(shape.nodes);
    Some(u8::try_from(r).unwrap_or(u8::MAX).saturating_add(1))
}

/// A segment's third octet: 0 (flat, core), R for rack R.
fn segment(rack: Option<u8>) -> u8 {
    rack.unwrap_or(0)
}

/// Node `index`'s underlay address: 10.100.SEGMENT.(10+index).
pub fn node_ip(index: u8, rack: Option<u8>) -> Ipv4Addr {
    Ipv4Addr::new(10, 100, segment(rack), 10 + index)
}

/// The IPv6 one, spelled like the IPv4 one: fd00:100:SEGMENT::(10+index).
pub fn node_ip6(index: u8, rack: Option<u8>) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x100, u16::from(segment(rack)), 0, 0, 0, 0, spelled(10 + u16::from(index)))
}

/// `n` written in decimal and read as hex, so that fd00:100::13 is node 3 like 10.100.0.13.
fn spelled(n: u16) -> u16 {
    u16::from_str_radix(&n.to_string(), 16).unwrap_or(0)
}

/// The router's address on rack `rack`.
pub fn rack_gateway(rack: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 100, rack, 1)
}

pub fn rack_gateway6(rack: u8) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x100, u16::from(rack), 0, 0, 0, 0, 1)
}

/// A rack's networks.
pub fn rack_nets(rack: u8) -> (IpNet, IpNet) {
    let v4 = IpNet::new(IpAddr::V4(Ipv4Addr::new(10, 100, rack, 0)), PREFIX4);
    let v6 = IpNet::new(IpAddr::V6(Ipv6Addr::new(0xfd00, 0x100, u16::from(rack), 0, 0, 0, 0, 0)), PREFIX6);
    (v4.unwrap_or_default(), v6.unwrap_or_default())
}

/// The bridge of a segment inside the underlay namespace.
pub fn bridge(segment: u8) -> String {
    format!("br{segment}")
}

/// What a machine on the underlay is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Node(u8),
    Outside,
    /// etcd member `i` (1-based).
    Etcd(u8),
    Router,
}

/// One of a machine's links: a veth whose underlay end (`port`) joins a segment's bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub port: String,
    pub ifname: String,
    pub segment: u8,
    pub ip: Ipv4Addr,
    pub ip6: Option<Ipv6Addr>,
}

/// One machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub role: Role,
    pub netns: String,
    pub links: Vec<Link>,
    /// Static routes: destination via gateway.
    pub routes: Vec<(IpNet, IpAddr)>,
    /// Forwards packets (nodes for their pods, the router).
    pub forwarding: bool,
}

impl Host {
    /// The address of its first link.
    pub fn ip(&self) -> Ipv4Addr {
        self.links.first().map(|l| l.ip).unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    pub fn ip6(&self) -> Option<Ipv6Addr> {
        self.links.first().and_then(|l| l.ip6)
    }
}

fn default_routes(gw: Ipv4Addr, gw6: Option<Ipv6Addr>) -> Vec<(IpNet, IpAddr)> {
    let mut out = vec![(IpNet::new(Ipv4Addr::UNSPECIFIED.into(), 0).unwrap_or_default(), IpAddr::V4(gw))];
    if let Some(g) = gw6 {
        out.push((IpNet::new(Ipv6Addr::UNSPECIFIED.into(), 0).unwrap_or_default(), IpAddr::V6(g)));
    }
    out
}

/// The lab's underlay (10.100.0.0/16, fd00:100::/48), routed through the router.
fn via_router(ipv6: bool) -> Vec<(IpNet, IpAddr)> {
    let mut out =
        vec![(IpNet::new(Ipv4Addr::new(10, 100, 0, 0).into(), 16).unwrap_or_default(), ROUTER_IP.into())];
    if ipv6 {
        let net = IpNet::new(Ipv6Addr::new(0xfd00, 0x100, 0, 0, 0, 0, 0, 0).into(), 48).unwrap_or_default();
        out.push((net, ROUTER_IP6.into()));
    }
    out
}

fn node_host(names: &Names, shape: &Shape, i: u8) -> Host {
    let rack = rack_of(i, shape);
    let ip6 = shape.ipv6.then(|| node_ip6(i, rack));
    let routes = match rack {
        // A Kubernetes node's default gateway: the outside host on a flat underlay, the
        // rack's router otherwise.
        None => default_routes(OUTSIDE_IP, shape.ipv6.then_some(OUTSIDE_IP6)),
        Some(r) => default_routes(rack_gateway(r), shape.ipv6.then(|| rack_gateway6(r))),
    };
    let link = Link {
        port: format!("node{i}"),
        ifname: UPLINK.into(),
        segment: segment(rack),
        ip: node_ip(i, rack),
        ip6,
    };
    Host { role: Role::Node(i), netns: names.node(i), links: vec![link], routes, forwarding: true }
}

fn core_host(
    role: Role,
    netns: String,
    port: &str,
    ip: Ipv4Addr,
    ip6: Option<Ipv6Addr>,
    routes: Vec<(IpNet, IpAddr)>,
) -> Host {
    let link = Link { port: port.into(), ifname: UPLINK.into(), segment: 0, ip, ip6 };
    Host { role, netns, links: vec![link], routes, forwarding: false }
}

fn router_host(names: &Names, shape: &Shape) -> Host {
    let mut links = vec![Link {
        port: "router".into(),
        ifname: UPLINK.into(),
        segment: 0,
        ip: ROUTER_IP,
        ip6: shape.ipv6.then_some(ROUTER_IP6),
    }];
    for r in 1..=shape.racks {
        let name = format!("rack{r}");
        links.push(Link {
            port: name.clone(),
            ifname: name,
            segment: r,
            ip: rack_gateway(r),
            ip6: shape.ipv6.then(|| rack_gateway6(r)),
        });
    }
    let routes = default_routes(OUTSIDE_IP, shape.ipv6.then_some(OUTSIDE_IP6));
    Host { role: Role::Router, netns: names.router(), links, routes, forwarding: true }
}

/// Every machine of the lab.
pub fn plan_hosts(names: &Names, shape: &Shape) -> Vec<Host> {
    let mut hosts: Vec<Host> = (1..=shape.nodes).map(|i| node_host(names, shape, i)).collect();
    let routed = if shape.racks > 0 { via_router(shape.ipv6) } else { Vec::new() };
    let outside_ip6 = shape.ipv6.then_some(OUTSIDE_IP6);
    hosts.push(core_host(Role::Outside, names.outside(), "outside", OUTSIDE_IP, outside_ip6, routed.clone()));
    let v4_only: Vec<(IpNet, IpAddr)> = routed.into_iter().filter(|(n, _)| n.addr().is_ipv4()).collect();
    for i in 1..=shape.etcd_members {
        let (ip, port) = (super::etcd::member_ip(i), format!("etcd{i}"));
        hosts.push(core_host(Role::Etcd(i), names.etcd_member(i), &port, ip, None, v4_only.clone()));
    }
    if shape.racks > 0 {
        hosts.push(router_host(names, shape));
    }
    hosts
}

/// The segments to create: the core (or flat) one, then one per rack.
pub fn segments(shape: &Shape) -> Vec<u8> {
    (0..=shape.racks).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(nodes: u8, racks: u8, ipv6: bool, etcd: bool) -> Shape {
        Shape { nodes, racks, ipv6, etcd_members: u8::from(etcd) * 3 }
    }

    #[test]
    fn flat_hosts_get_distinct_names_ports_and_addresses() {
        let hosts = plan_hosts(&Names::new("twl").unwrap(), &shape(3, 0, true, true));
        assert_eq!(hosts.len(), 7);
        assert_eq!(hosts[0].netns, "twl-node-1");
        assert_eq!(hosts[0].ip(), Ipv4Addr::new(10, 100, 0, 11));
        assert_eq!(hosts[2].ip6().unwrap().to_string(), "fd00:100::13");
        assert_eq!(hosts[0].routes[0].1, IpAddr::V4(OUTSIDE_IP));
        assert_eq!(hosts[3].role, Role::Outside);
        assert_eq!(hosts[3].ip6().unwrap().to_string(), "fd00:100::254");
        assert!(hosts[3].routes.is_empty());
        assert_eq!((hosts[4].netns.as_str(), hosts[6].netns.as_str()), ("twl-etcd", "twl-etcd3"));
        assert_eq!(hosts[6].ip(), Ipv4Addr::new(10, 100, 0, 251));
        let mut ips: Vec<_> = hosts.iter().map(Host::ip).collect();
        let mut ports: Vec<_> = hosts.iter().flat_map(|h| h.links.iter().map(|l| l.port.clone())).collect();
        ips.sort();
        ips.dedup();
        ports.sort();
        ports.dedup();
        assert_eq!((ips.len(), ports.len()), (7, 7));
        assert!(hosts.iter().flat_map(|h| &h.links).all(|l| l.port.len() <= 15 && l.segment == 0));
        assert_eq!(segments(&shape(3, 0, true, true)), [0]);
    }

    #[test]
    fn without_options_there_is_no_ipv6_etcd_or_router() {
        let hosts = plan_hosts(&Names::new("x").unwrap(), &shape(2, 0, false, false));
        assert_eq!(hosts.len(), 3);
        assert!(hosts.iter().all(|h| h.ip6().is_none() && !matches!(h.role, Role::Etcd(_) | Role::Router)));
        assert_eq!(node_ip(MAX_NODES, None), Ipv4Addr::new(10, 100, 0, 210));
        assert_eq!(node_ip6(MAX_NODES, None).to_string(), "fd00:100::210");
    }

    #[test]
    fn racks_split_nodes_in_order_behind_one_router() {
        let s = shape(4, 2, true, true);
        let racks: Vec<Option<u8>> = (1..=4).map(|i| rack_of(i, &s)).collect();
        assert_eq!(racks, [Some(1), Some(1), Some(2), Some(2)]);
        assert_eq!(
            (1..=3).map(|i| rack_of(i, &shape(3, 2, false, false))).collect::<Vec<_>>(),
            [Some(1), Some(1), Some(2)]
        );
        assert_eq!(rack_of(1, &shape(3, 0, false, false)), None);
        let hosts = plan_hosts(&Names::new("twl").unwrap(), &s);
        assert_eq!(hosts[2].ip(), Ipv4Addr::new(10, 100, 2, 13));
        assert_eq!(hosts[2].ip6().unwrap().to_string(), "fd00:100:2::13");
        assert_eq!(hosts[2].links[0].segment, 2);
        assert_eq!(hosts[2].routes[0].1, IpAddr::V4(Ipv4Addr::new(10, 100, 2, 1)));
        let router = hosts.iter().find(|h| h.role == Role::Router).unwrap();
        assert_eq!(router.netns, "twl-router");
        let links: Vec<(String, u8, String)> =
            router.links.iter().map(|l| (l.ifname.clone(), l.segment, l.ip.to_string())).collect();
        assert_eq!(
            links,
            [
                ("eth0".into(), 0, "10.100.0.1".into()),
                ("rack1".into(), 1, "10.100.1.1".into()),
                ("rack2".into(), 2, "10.100.2.1".into())
            ]
        );
        assert!(router.forwarding);
        let outside = hosts.iter().find(|h| h.role == Role::Outside).unwrap();
        assert_eq!(
            outside.routes.iter().map(|(n, g)| format!("{n} via {g}")).collect::<Vec<_>>(),
            ["10.100.0.0/16 via 10.100.0.1", "fd00:100::/48 via fd00:100::1"]
        );
        let etcd = hosts.iter().find(|h| h.role == Role::Etcd(1)).unwrap();
        assert_eq!(etcd.routes.len(), 1);
        assert_eq!(segments(&s), [0, 1, 2]);
        let mut ports: Vec<String> =
            hosts.iter().flat_map(|h| h.links.iter().map(|l| l.port.clone())).collect();
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), 4 + 1 + 3 + 3);
    }
}
