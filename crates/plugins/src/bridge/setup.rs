//! The host side of the bridge plugin: the bridge itself, the pod's port on it, and the
//! gateway addresses. Each step is an idempotent `ensure_*`, safe when many pods start at
//! once on a fresh node (the reference's "file exists" races, containerd#3507).

use cni_spec::{Error, ErrorCode};
use ipnet::IpNet;
use nl::{Handle, Link};

use super::conf::BridgeConf;
use crate::kernel::{enable_forwarding, host_netns, nl_error, no_link_local};

/// Creates the bridge unless it exists, brings it up, pins its MAC.
pub fn ensure_bridge(nl: &Handle, conf: &BridgeConf) -> Result<Link, Error> {
    let br = nl.bridge_ensure(&conf.bridge, conf.mtu, None).map_err(|e| {
        let code = if e.errno().is_none() { ErrorCode::InvalidConfig } else { ErrorCode::Internal };
        Error::new(code, format!("bridge {}: {e}", conf.bridge))
    })?;
    if conf.promisc && !br.promisc {
        nl.link_set_promisc(br.index, true).map_err(nl_error)?;
    }
    if !br.up {
        // A bridge takes the lowest MAC of its ports unless its own is set explicitly; pin it
        // so the gateway's MAC does not change as pods come and go.
        if let Some(mac) = br.mac {
            nl.link_set_mac(br.index, mac).map_err(nl_error)?;
        }
        // A bridge must not pick up router advertisements meant for the pods behind it.
        let host = host_netns()?;
        let _ = nl::sysctl_set(&host, &format!("net/ipv6/conf/{}/accept_ra", br.name), "0");
        nl.link_set_up(br.index, true).map_err(nl_error)?;
    }
    Ok(br)
}

/// Enslaves the host end of the pod's veth with the port options, and brings it up. A bridge
/// port has no addresses of its own (the bridge has the gateway's), so it gets no IPv6
/// link-local either.
pub fn attach_port(nl: &Handle, port: &Link, br: &Link, conf: &BridgeConf) -> Result<(), Error> {
    no_link_local(nl, port.index)?;
    nl.link_set_master(port.index, Some(br.index)).map_err(nl_error)?;
    let isolated = conf.port_isolation.then_some(true);
    nl.bridge_port_set(port.index, Some(conf.hairpin), isolated, None).map_err(nl_error)?;
    nl.link_set_up(port.index, true).map_err(nl_error)
}

/// Puts the gateways on the bridge and turns on forwarding for their families.
pub fn ensure_gateways(nl: &Handle, br: &Link, gws: &[IpNet], force: bool) -> Result<(), Error> {
    for gw in gws {
        ensure_gateway_addr(nl, br, *gw, force)?;
    }
    enable_forwarding(&host_netns()?, gws.iter().map(IpNet::addr))
}

/// Makes sure the bridge holds `gw`. Another address of the same family in the way is an
/// error unless `forceAddress` (then it is replaced); EEXIST from a concurrent pod is fine.
fn ensure_gateway_addr(nl: &Handle, br: &Link, gw: IpNet, force: bool) -> Result<(), Error> {
    let addrs = nl.addr_list(Some(br.index)).map_err(nl_error)?;
    for a in addrs.iter().filter(|a| a.net.addr().is_ipv4() == gw.addr().is_ipv4()) {
        if a.net == gw {
            return Ok(());
        }
        // Link-local IPv6 addresses are the bridge's own and never conflict.
        let overlaps = gw.addr().is_ipv4() || a.net.contains(&gw.addr()) || gw.contains(&a.net.addr());
        if overlaps {
            if !force {
                return Err(Error::invalid_config(format!(
                    "bridge {} already has address {} different from {gw} (set forceAddress to replace it)",
                    br.name, a.net
                )));
            }
            nl.addr_del(br.index, a.net).map_err(nl_error)?;
        }
    }
    match nl.addr_add(br.index, gw, true) {
        Err(e) if !e.is_exists() => Err(nl_error(e)),
        _ => Ok(()),
    }
}
