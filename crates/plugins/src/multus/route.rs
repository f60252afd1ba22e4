//! `default-route` in the pod: when a selection claims the pod's default route for a family,
//! every attachment's default routes of that family are removed from its interface, and the
//! claiming attachment gets `default via GATEWAY dev IFNAME` instead — Multus's behaviour
//! (multus-cni docs/how-to-use.md "Specifying a default route for a specific attachment").

use std::net::IpAddr;
use std::path::Path;

use cni_spec::Error;
use ipnet::IpNet;
use netns::NetNs;
use nl::{Family, Handle, Route};

use crate::kernel::nl_error;

const MAIN_TABLE: u32 = 254;

fn any(v4: bool) -> IpNet {
    let addr: IpAddr = if v4 { IpAddr::from([0u8; 4]) } else { IpAddr::from([0u8; 16]) };
    IpNet::new(addr, 0).unwrap_or_default()
}

/// Applies the moves for the attachment on `ifname` in the pod at `netns`: drops its default
/// routes of the claimed families (`claimed.0` IPv4, `.1` IPv6), then adds `gateways`.
pub fn apply_default_routes(
    netns: &Path,
    ifname: &str,
    claimed: (bool, bool),
    gateways: &[IpAddr],
) -> Result<(), Error> {
    if !claimed.0 && !claimed.1 {
        return Ok(());
    }
    let ns = NetNs::open(netns)
        .map_err(|e| Error::internal(format!("multus: open netns {}: {e}", netns.display())))?;
    let h = Handle::in_netns(&ns).map_err(nl_error)?;
    let link = h.link_get(ifname).map_err(nl_error)?.ok_or_else(|| {
        Error::internal(format!(
            "multus: interface {ifname} is not in netns {} after its ADD",
            netns.display()
        ))
    })?;
    for (family, v4, on) in [(Family::V4, true, claimed.0), (Family::V6, false, claimed.1)] {
        if !on {
            continue;
        }
        let routes = h.route_list(Some(family), Some(MAIN_TABLE)).map_err(nl_error)?;
        for r in routes.iter().filter(|r| r.dst == any(v4) && r.oif == Some(link.index)) {
            h.route_del(r).map_err(nl_error)?;
        }
    }
    for gw in gateways {
        let route =
            Route { dst: any(gw.is_ipv4()), gw: Some(*gw), oif: Some(link.index), ..Route::default() };
        h.route_replace(&route).map_err(|e| {
            Error::internal(format!("multus: default route via {gw} dev {ifname}: {}", nl_error(e).msg))
        })?;
    }
    Ok(())
}
