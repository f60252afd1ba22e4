//! The container side of an interface plugin: which addresses and routes the interface must
//! hold according to the result (pure), putting them there, and checking them later. What
//! the reference calls `ipam.ConfigureIface`.

use std::net::IpAddr;

use cni_spec::{CniResult, Error};
use ipnet::IpNet;
use netns::NetNs;
use nl::{Handle, Link};

use crate::kernel::nl_error;

/// What one container interface must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IfacePlan {
    pub addrs: Vec<IpNet>,
    pub routes: Vec<nl::Route>,
}

/// The addresses whose `interface` points at `iface` (by index into `result.interfaces`),
/// and every route of the result; a route without a gateway goes via the first gateway of
/// its family among those addresses.
pub fn plan_iface(result: &CniResult, iface: usize) -> IfacePlan {
    let mine: Vec<_> = result.ips.iter().filter(|ip| ip.interface == Some(iface)).collect();
    let gw_of = |v4: bool| mine.iter().filter_map(|ip| ip.gateway).find(|gw| gw.is_ipv4() == v4);
    let routes = result
        .routes
        .iter()
        .map(|r| nl::Route {
            dst: r.dst.trunc(),
            gw: r.gw.or_else(|| gw_of(r.dst.addr().is_ipv4())),
            metric: r.priority,
            table: r.table,
            scope: r.scope,
            mtu: r.mtu,
            advmss: r.advmss,
            ..Default::default()
        })
        .collect();
    IfacePlan { addrs: mine.iter().map(|ip| ip.address).collect(), routes }
}

/// Puts the plan on `link` inside `ns`: sysctls the reference sets, addresses (without DAD
/// unless `dad`), link up, then routes (which need the link up).
pub fn apply_iface(ns: &NetNs, nl: &Handle, link: &Link, plan: &IfacePlan, dad: bool) -> Result<(), Error> {
    let has_v6 = plan.addrs.iter().any(|a| a.addr().is_ipv6());
    configure_sysctls(ns, &link.name, has_v6, dad)?;
    for addr in &plan.addrs {
        nl.addr_add(link.index, *addr, !dad).map_err(nl_error)?;
    }
    nl.link_set_up(link.index, true).map_err(nl_error)?;
    for route in &plan.routes {
        let route = nl::Route { oif: Some(link.index), ..route.clone() };
        nl.route_add(&route).map_err(nl_error)?;
    }
    Ok(())
}

/// In one visit to the namespace (a thread each would cost more than the writes).
fn configure_sysctls(ns: &NetNs, ifname: &str, has_v6: bool, dad: bool) -> Result<(), Error> {
    // Gratuitous ARP when the address comes up, so neighbours learn a reused IP's new MAC.
    let mut settings = vec![(format!("net/ipv4/conf/{ifname}/arp_notify"), "1")];
    if has_v6 {
        for dev in ["lo", ifname] {
            settings.push((format!("net/ipv6/conf/{dev}/disable_ipv6"), "0"));
        }
        settings.push((format!("net/ipv6/conf/{ifname}/keep_addr_on_down"), "1"));
        settings.push((format!("net/ipv6/conf/{ifname}/accept_dad"), if dad { "1" } else { "0" }));
    }
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    nl::sysctl_set_all(ns, &settings).map(drop).map_err(nl_error)
}

/// CHECK: the link holds every planned address and route.
pub fn check_iface(nl: &Handle, link: &Link, plan: &IfacePlan) -> Result<(), Error> {
    let have = nl.addr_list(Some(link.index)).map_err(nl_error)?;
    for want in &plan.addrs {
        if !have.iter().any(|a| a.net == *want) {
            return Err(Error::internal(format!("{} lacks address {want}", link.name)));
        }
    }
    let routes = nl.route_list(None, None).map_err(nl_error)?;
    for want in &plan.routes {
        let found = routes.iter().any(|r| {
            r.dst == want.dst && r.oif == Some(link.index) && (want.gw.is_none() || r.gw == want.gw)
        });
        if !found {
            let via = want.gw.map(|g| format!(" via {g}")).unwrap_or_default();
            return Err(Error::internal(format!("{} lacks route {}{via}", link.name, want.dst)));
        }
    }
    Ok(())
}

/// The first address of a subnet after the network address: the gateway the reference
/// assumes when IPAM names none.
pub fn first_host(net: &IpNet) -> IpAddr {
    match net.trunc().addr() {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a).wrapping_add(1)).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a).wrapping_add(1)).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni_spec::{IpConfig, Route, Version};

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn plan_takes_own_addresses_and_fills_gateways_by_family() {
        let result = CniResult {
            cni_version: Version::V1_0_0,
            ips: vec![
                IpConfig {
                    address: net("10.1.0.5/24"),
                    gateway: Some("10.1.0.1".parse().unwrap()),
                    interface: Some(2),
                },
                IpConfig {
                    address: net("fd00::5/64"),
                    gateway: Some("fd00::1".parse().unwrap()),
                    interface: Some(2),
                },
                IpConfig { address: net("10.9.0.5/24"), gateway: None, interface: Some(0) },
            ],
            routes: vec![
                Route::new(net("0.0.0.0/0"), None),
                Route::new(net("::/0"), None),
                Route::new(net("10.50.0.0/16"), Some("10.1.0.254".parse().unwrap())),
            ],
            ..Default::default()
        };
        let plan = plan_iface(&result, 2);
        assert_eq!(plan.addrs, vec![net("10.1.0.5/24"), net("fd00::5/64")]);
        assert_eq!(plan.routes[0].gw, Some("10.1.0.1".parse().unwrap()));
        assert_eq!(plan.routes[1].gw, Some("fd00::1".parse().unwrap()));
        assert_eq!(plan.routes[2].gw, Some("10.1.0.254".parse().unwrap()));
    }

    #[test]
    fn first_host_of_subnets() {
        assert_eq!(first_host(&net("10.1.2.77/24")), "10.1.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(first_host(&net("fd00:1::99/64")), "fd00:1::1".parse::<IpAddr>().unwrap());
    }
}
