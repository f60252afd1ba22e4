//! Kernel side of ptp: putting the plan on both ends of the veth, checking it, and finding
//! the host end again when the container namespace is gone.

use cni_spec::{CniResult, Error};
use netns::NetNs;
use nl::{Handle, Link};

use super::plan::{container_routes, host_prefix, ips_of, plan_host, prefix_routes};
use crate::container::{IfacePlan, apply_iface, plan_iface};
use crate::kernel::nl_error;

/// The container end: addresses and link up (through the shared container code), the
/// kernel's prefix routes replaced by the point-to-point ones, then the IPAM routes, which
/// may go via the gateway and so need its link route first.
pub fn apply_container(
    ns: &NetNs,
    nl: &Handle,
    link: &Link,
    result: &CniResult,
    iface: usize,
) -> Result<(), Error> {
    let full = plan_iface(result, iface);
    let addrs_only = IfacePlan { addrs: full.addrs.clone(), routes: Vec::new() };
    apply_iface(ns, nl, link, &addrs_only, false)?;
    for dst in prefix_routes(result, iface) {
        let route = nl::Route { dst, oif: Some(link.index), ..Default::default() };
        match nl.route_del(&route) {
            Err(e) if !e.is_not_found() => return Err(nl_error(e)),
            _ => {}
        }
    }
    for route in container_routes(result, iface).into_iter().chain(full.routes) {
        nl.route_add(&nl::Route { oif: Some(link.index), ..route }).map_err(nl_error)?;
    }
    Ok(())
}

/// The host end: the gateways as host addresses (no DAD: the same gateway sits on every
/// pod's veth), link up, a route to each pod address. A pod address already routed elsewhere
/// means two attachments were given the same address, which is reported, not papered over.
pub fn apply_host(
    host_ns: &NetNs,
    nl: &Handle,
    link: &Link,
    result: &CniResult,
    iface: usize,
) -> Result<(), Error> {
    let plan = plan_host(result, iface);
    if plan.addrs.iter().any(|a| a.addr().is_ipv6()) {
        // The kernel sends no neighbour solicitation while the link-local address is still
        // tentative, so DAD on it would hold up forwarded IPv6 traffic to the pod for about a
        // second; only the pod is on the other end, so there is nothing to detect.
        let key = format!("net/ipv6/conf/{}/accept_dad", link.name);
        nl::sysctl_set(host_ns, &key, "0").map_err(nl_error)?;
    }
    for addr in &plan.addrs {
        nl.addr_add(link.index, *addr, true).map_err(nl_error)?;
    }
    nl.link_set_up(link.index, true).map_err(nl_error)?;
    for route in plan.routes {
        nl.route_add(&nl::Route { oif: Some(link.index), ..route }).map_err(nl_error)?;
    }
    Ok(())
}

/// CHECK of the point-to-point routes in the container, and of the host end: the veth peer
/// exists, holds the gateways and routes the pod addresses to itself.
pub fn check_routes(
    host: &Handle,
    cont: &Handle,
    link: &Link,
    prev: &CniResult,
    iface: usize,
) -> Result<(), Error> {
    let routes = cont.route_list(None, None).map_err(nl_error)?;
    for want in container_routes(prev, iface) {
        if !routes.iter().any(|r| r.dst == want.dst && r.oif == Some(link.index) && r.gw == want.gw) {
            let via = want.gw.map(|g| format!(" via {g}")).unwrap_or_default();
            return Err(Error::internal(format!("{} lacks route {}{via}", link.name, want.dst)));
        }
    }
    let peer = link
        .link
        .and_then(|i| host.link_by_index(i).ok().flatten())
        .filter(|p| p.kind.as_deref() == Some("veth"))
        .ok_or_else(|| Error::internal(format!("the host end of {} is gone", link.name)))?;
    let plan = plan_host(prev, iface);
    let addrs = host.addr_list(Some(peer.index)).map_err(nl_error)?;
    for want in &plan.addrs {
        if !addrs.iter().any(|a| a.net == *want) {
            return Err(Error::internal(format!("host veth {} lacks address {want}", peer.name)));
        }
    }
    let host_routes = host.route_list(None, None).map_err(nl_error)?;
    for want in &plan.routes {
        if !host_routes.iter().any(|r| r.dst == want.dst && r.oif == Some(peer.index)) {
            return Err(Error::internal(format!("host lacks route {} dev {}", want.dst, peer.name)));
        }
    }
    Ok(())
}

/// DEL without the container namespace: if a pod address of `prev` is still routed to a veth
/// on the host (the namespace outlived its bind mount), that veth — and with it its peer, its
/// addresses and routes — is deleted. Nothing found is fine.
pub fn teardown_host(host: &Handle, prev: &CniResult, iface: usize) -> Result<(), Error> {
    let routes = host.route_list(None, Some(nl::route::TABLE_MAIN)).map_err(nl_error)?;
    for ip in ips_of(prev, iface) {
        let dst = host_prefix(ip.address.addr());
        for oif in routes.iter().filter(|r| r.dst == dst && r.gw.is_none()).filter_map(|r| r.oif) {
            let Some(link) = host.link_by_index(oif).map_err(nl_error)? else { continue };
            if link.kind.as_deref() != Some("veth") {
                continue;
            }
            match host.link_del(link.index) {
                Err(e) if !e.is_not_found() => return Err(nl_error(e)),
                _ => {}
            }
        }
    }
    Ok(())
}
