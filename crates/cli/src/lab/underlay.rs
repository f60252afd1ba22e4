//! Creates what [`super::topology`] planned, through netlink from outside the namespaces:
//! the underlay namespace with one bridge per segment, and every machine's namespace plugged
//! into its segments with addresses, routes and forwarding. Nothing here touches the
//! namespace `twill` runs in.

use anyhow::{Context, Result};
use ipnet::IpNet;
use netns::NetNs;

use super::names::Names;
use super::topology::{Host, Link, PREFIX4, PREFIX6, bridge};

/// Creates the underlay namespace with its bridges and every host plugged into them.
/// `created` is called with each namespace name right after it exists, so a caller can record
/// it before a later step fails.
pub fn apply_topology(
    names: &Names,
    segments: &[u8],
    hosts: &[Host],
    created: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<()> {
    let underlay_name = names.underlay();
    let underlay = create_netns(&underlay_name, created)?;
    let nl = nl::Handle::in_netns(&underlay)?;
    let mut bridges = Vec::new();
    for s in segments {
        let br = nl.bridge_ensure(&bridge(*s), None, None)?;
        nl.link_set_up(br.index, true)?;
        bridges.push((*s, br.index));
    }
    for host in hosts {
        let ns = create_netns(&host.netns, created)?;
        for link in &host.links {
            let br = bridges.iter().find(|(s, _)| *s == link.segment).map(|(_, i)| *i);
            let br = br.with_context(|| format!("no segment {} for {}", link.segment, host.netns))?;
            plug(&nl, br, link, &ns)
                .with_context(|| format!("plug {} into segment {}", host.netns, link.segment))?;
        }
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

/// A veth whose underlay end joins the bridge and whose other end is the host's interface.
fn plug(underlay: &nl::Handle, bridge: u32, link: &Link, ns: &NetNs) -> Result<()> {
    underlay.veth_add(&link.port, &link.ifname, Some(ns), None, None, None)?;
    let port = underlay.link_get(&link.port)?.with_context(|| format!("veth {} vanished", link.port))?;
    underlay.link_set_master(port.index, Some(bridge))?;
    underlay.link_set_up(port.index, true)?;
    Ok(())
}

fn configure_host(host: &Host, ns: &NetNs) -> Result<()> {
    let nl = nl::Handle::in_netns(ns)?;
    for link in &host.links {
        let dev = nl.link_get(&link.ifname)?.with_context(|| format!("no {}", link.ifname))?;
        nl.addr_add(dev.index, IpNet::new(link.ip.into(), PREFIX4)?, true)?;
        if let Some(ip6) = link.ip6 {
            nl.addr_add(dev.index, IpNet::new(ip6.into(), PREFIX6)?, true)?;
            // The link-local address made when the link comes up would stay tentative for
            // DAD's second or two, and until then the kernel sends no neighbour solicitation
            // for a forwarded packet (it has no usable source): pod traffic to another node
            // would be lost. Nothing else can hold these addresses, so there is nothing to
            // detect.
            nl::sysctl_set(ns, &format!("net/ipv6/conf/{}/accept_dad", link.ifname), "0")?;
        }
        nl.link_set_up(dev.index, true)?;
    }
    for (dst, gw) in &host.routes {
        nl.route_add(&nl::Route { dst: *dst, gw: Some(*gw), ..Default::default() })?;
    }
    if host.forwarding {
        // A Kubernetes node is set up to forward (the kubeadm prerequisites), and so is a
        // router; set rather than relying on whichever plugin turns it on first.
        nl::sysctl_set(ns, "net/ipv4/ip_forward", "1")?;
        if host.ip6().is_some() {
            nl::sysctl_set(ns, "net/ipv6/conf/all/forwarding", "1")?;
        }
    }
    Ok(())
}
