//! The lab's wiring: an underlay namespace holding one bridge (the L2 segment every machine
//! is plugged into) and, on it, one namespace per machine — the nodes, the "outside" host that
//! stands in for the internet, and, with the etcd datastore, the datastore host.
//!
//! `plan_hosts` decides names and addresses (pure); `apply_topology` creates them through
//! netlink from outside the namespaces. Nothing here touches the namespace `twill` runs in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{Context, Result};
use ipnet::IpNet;
use netns::NetNs;

use super::names::Names;

/// The underlay's IPv4 prefix length (10.100.0.0/24).
const UNDERLAY_PREFIX4: u8 = 24;
/// The underlay's IPv6 prefix length (fd00:100::/64).
const UNDERLAY_PREFIX6: u8 = 64;
/// The underlay bridge, inside the underlay namespace.
const UNDERLAY_BRIDGE: &str = "br0";
/// Every machine's link to the underlay.
pub const UPLINK: &str = "eth0";
/// The most nodes a lab has: node addresses are 10.100.0.11 up to .(10+N).
pub const MAX_NODES: u8 = 200;

/// The outside host: the nodes' default gateway, a stand-in for the internet.
pub const OUTSIDE_IP: Ipv4Addr = Ipv4Addr::new(10, 100, 0, 254);
pub const OUTSIDE_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x100, 0, 0, 0, 0, 0, 0x254);

/// Node `index`'s underlay address: 10.100.0.(10+index).
pub fn node_ip(index: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 100, 0, 10 + index)
}

/// Node `index`'s IPv6 underlay address, spelled like the IPv4 one: fd00:100::(10+index).
pub fn node_ip6(index: u8) -> Ipv6Addr {
    let spelled = u16::from_str_radix(&(10 + u16::from(index)).to_string(), 16).unwrap_or(0);
    Ipv6Addr::new(0xfd00, 0x100, 0, 0, 0, 0, 0, spelled)
}

/// What a machine on the underlay is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Node(u8),
    Outside,
    /// etcd member `i` (1-based).
    Etcd(u8),
}

/// One machine plugged into the underlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub role: Role,
    pub netns: String,
    /// Its port on the underlay bridge (a veth end inside the underlay namespace).
    pub port: String,
    pub ip: Ipv4Addr,
    pub ip6: Option<Ipv6Addr>,
}

impl Host {
    /// Nodes route everything else through the outside host and forward for their pods.
    fn is_node(&self) -> bool {
        matches!(self.role, Role::Node(_))
    }
}

/// The machines of a lab with `nodes` nodes and `etcd_members` etcd hosts.
pub fn plan_hosts(names: &Names, nodes: u8, ipv6: bool, etcd_members: u8) -> Vec<Host> {
    let mut hosts: Vec<Host> = (1..=nodes)
        .map(|i| Host {
            role: Role::Node(i),
            netns: names.node(i),
            port: format!("node{i}"),
            ip: node_ip(i),
            ip6: ipv6.then(|| node_ip6(i)),
        })
        .collect();
    hosts.push(Host {
        role: Role::Outside,
        netns: names.outside(),
        port: "outside".into(),
        ip: OUTSIDE_IP,
        ip6: ipv6.then_some(OUTSIDE_IP6),
    });
    hosts.extend((1..=etcd_members).map(|i| Host {
        role: Role::Etcd(i),
        netns: names.etcd_member(i),
        port: format!("etcd{i}"),
        ip: super::etcd::member_ip(i),
        ip6: None,
    }));
    hosts
}

/// Creates the underlay namespace with its bridge and every host namespace plugged into it.
/// `created` is called with each namespace name right after it exists, so a caller can record
/// it before a later step fails.
pub fn apply_topology(
    names: &Names,
    hosts: &[Host],
    created: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<()> {
    let underlay_name = names.underlay();
    let underlay = create_netns(&underlay_name, created)?;
    let nl = nl::Handle::in_netns(&underlay)?;
    let bridge = nl.bridge_ensure(UNDERLAY_BRIDGE, None, None)?;
    nl.link_set_up(bridge.index, true)?;
    for host in hosts {
        let ns = create_netns(&host.netns, created)?;
        plug(&nl, bridge.index, host, &ns)
            .with_context(|| format!("plug {} into the underlay", host.netns))?;
        configure_host(host, &ns).with_context(|| format!("configure {}", host.netns))?;
    }
    Ok(())
}

fn create_netns(name: &str, created: &mut dyn FnMut(&str) -> Result<()>) -> Result<NetNs> {
    let ns = netns::create_named(name).with_context(|| format!("create netns {name}"))?;
    created(name)?;
    // Each namespace stands for a machine of its own: it starts with the kernel's defaults,
    // not with whatever this host's IPv4 settings are.
    nl::reset_inherited(&ns).with_context(|| format!("reset the sysctls {name} inherited"))?;
    let nl = nl::Handle::in_netns(&ns)?;
    let lo = nl.link_get("lo")?.with_context(|| format!("no lo in {name}"))?;
    nl.link_set_up(lo.index, true)?;
    Ok(ns)
}

/// A veth whose underlay end joins the bridge and whose other end is the host's eth0.
fn plug(underlay: &nl::Handle, bridge: u32, host: &Host, ns: &NetNs) -> Result<()> {
    underlay.veth_add(&host.port, UPLINK, Some(ns), None, None, None)?;
    let port = underlay.link_get(&host.port)?.with_context(|| format!("veth {} vanished", host.port))?;
    underlay.link_set_master(port.index, Some(bridge))?;
    underlay.link_set_up(port.index, true)?;
    Ok(())
}

fn configure_host(host: &Host, ns: &NetNs) -> Result<()> {
    let nl = nl::Handle::in_netns(ns)?;
    let eth0 = nl.link_get(UPLINK)?.context("no eth0")?;
    nl.addr_add(eth0.index, IpNet::new(host.ip.into(), UNDERLAY_PREFIX4)?, true)?;
    if let Some(ip6) = host.ip6 {
        nl.addr_add(eth0.index, IpNet::new(ip6.into(), UNDERLAY_PREFIX6)?, true)?;
        // The link-local address made when eth0 comes up would stay tentative for DAD's
        // second or two, and until then the kernel sends no neighbour solicitation for a
        // forwarded packet (it has no usable source): pod traffic to another node would be
        // lost. Nothing else can hold these addresses, so there is nothing to detect.
        nl::sysctl_set(ns, &format!("net/ipv6/conf/{UPLINK}/accept_dad"), "0")?;
    }
    nl.link_set_up(eth0.index, true)?;
    if !host.is_node() {
        return Ok(());
    }
    nl.route_add(&default_route(OUTSIDE_IP.into()))?;
    if host.ip6.is_some() {
        nl.route_add(&default_route(OUTSIDE_IP6.into()))?;
    }
    // A Kubernetes node is set up to forward (the kubeadm prerequisites); the lab's nodes are
    // configured the same way rather than relying on whichever plugin turns it on first.
    nl::sysctl_set(ns, "net/ipv4/ip_forward", "1")?;
    if host.ip6.is_some() {
        nl::sysctl_set(ns, "net/ipv6/conf/all/forwarding", "1")?;
    }
    Ok(())
}

fn default_route(gw: IpAddr) -> nl::Route {
    let dst = match gw {
        IpAddr::V4(_) => IpNet::new(Ipv4Addr::UNSPECIFIED.into(), 0),
        IpAddr::V6(_) => IpNet::new(Ipv6Addr::UNSPECIFIED.into(), 0),
    };
    nl::Route { dst: dst.unwrap_or_default(), gw: Some(gw), ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_get_distinct_names_ports_and_addresses() {
        let names = Names::new("twl").unwrap();
        let hosts = plan_hosts(&names, 3, true, 3);
        assert_eq!(hosts.len(), 7);
        assert_eq!(hosts[0].netns, "twl-node-1");
        assert_eq!(hosts[0].ip, Ipv4Addr::new(10, 100, 0, 11));
        assert_eq!(hosts[2].ip6.unwrap().to_string(), "fd00:100::13");
        assert_eq!(hosts[3].role, Role::Outside);
        assert_eq!(hosts[3].ip6.unwrap().to_string(), "fd00:100::254");
        assert_eq!((hosts[4].netns.as_str(), hosts[6].netns.as_str()), ("twl-etcd", "twl-etcd3"));
        assert_eq!(hosts[6].ip, Ipv4Addr::new(10, 100, 0, 251));
        let mut ips: Vec<_> = hosts.iter().map(|h| h.ip).collect();
        let mut ports: Vec<_> = hosts.iter().map(|h| h.port.clone()).collect();
        ips.sort();
        ips.dedup();
        ports.sort();
        ports.dedup();
        assert_eq!((ips.len(), ports.len()), (7, 7));
        assert!(hosts.iter().all(|h| h.port.len() <= 15));
    }

    #[test]
    fn without_options_there_is_no_ipv6_and_no_etcd_host() {
        let hosts = plan_hosts(&Names::new("x").unwrap(), 2, false, 0);
        assert_eq!(hosts.len(), 3);
        assert!(hosts.iter().all(|h| h.ip6.is_none() && !matches!(h.role, Role::Etcd(_))));
        assert_eq!(node_ip(MAX_NODES), Ipv4Addr::new(10, 100, 0, 210));
        assert_eq!(node_ip6(MAX_NODES).to_string(), "fd00:100::210");
    }
}
