//! What a ptp attachment consists of, derived from the IPAM result (pure).
//!
//! A veth cannot be IFF_POINTOPOINT, so ptp fakes it the way the reference does: the pod keeps
//! its address with the IPAM prefix (`10.1.1.5/24`) but loses the kernel's on-link prefix
//! route; instead it reaches the gateway through a host route on the link
//! (`10.1.1.1/32 dev eth0 scope link src 10.1.1.5`) and everything else of its subnet through
//! that gateway (`10.1.1.0/24 via 10.1.1.1 src 10.1.1.5`). So even neighbours in the same
//! subnet are reached through the host, which holds the gateway as a /32 (/128) on its end of
//! the veth and routes each pod address to that veth.

use std::net::IpAddr;

use cni_spec::{CniResult, Error, IpConfig};
use ipnet::IpNet;

use crate::container::first_host;

/// Where ptp puts the container veth in the result: after the host end, as the reference does.
pub const CONTAINER_IFACE: usize = 1;

/// Assigns every address to the container veth and gives each a gateway: the one IPAM named,
/// else the subnet's first host. A gateway equal to the pod's own address cannot work.
pub fn plan_gateways(result: &mut CniResult) -> Result<(), Error> {
    for ip in &mut result.ips {
        ip.interface = Some(CONTAINER_IFACE);
        let gw = *ip.gateway.get_or_insert_with(|| first_host(&ip.address));
        if gw == ip.address.addr() {
            return Err(Error::invalid_config(format!(
                "ipam gave {} with itself as gateway; ptp needs a gateway address for the host side",
                ip.address
            )));
        }
        if gw.is_ipv4() != ip.address.addr().is_ipv4() {
            return Err(Error::invalid_config(format!(
                "ipam gave {} with gateway {gw} of the other address family",
                ip.address
            )));
        }
    }
    Ok(())
}

/// The addresses of interface `iface` (all of them when the result carries no indices, as
/// 0.2.0 results do not).
pub fn ips_of(result: &CniResult, iface: usize) -> Vec<&IpConfig> {
    result.ips.iter().filter(|ip| ip.interface.is_none_or(|i| i == iface)).collect()
}

/// A single address as a host prefix (/32 or /128).
pub fn host_prefix(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

/// The kernel's on-link prefix routes that ptp removes from the container interface.
pub fn prefix_routes(result: &CniResult, iface: usize) -> Vec<IpNet> {
    let mut nets = Vec::new();
    for ip in ips_of(result, iface) {
        let net = ip.address.trunc();
        if net.prefix_len() < net.max_prefix_len() && !nets.contains(&net) {
            nets.push(net);
        }
    }
    nets
}

/// The container's point-to-point routes (without `oif`, which is the container veth), in
/// the order they must be added: each gateway's link route comes before routes via it.
pub fn container_routes(result: &CniResult, iface: usize) -> Vec<nl::Route> {
    let mut routes: Vec<nl::Route> = Vec::new();
    let mut push = |r: nl::Route| {
        if !routes.iter().any(|x| x.dst == r.dst) {
            routes.push(r);
        }
    };
    for ip in ips_of(result, iface) {
        let Some(gw) = ip.gateway else { continue };
        let src = Some(ip.address.addr());
        push(nl::Route { dst: host_prefix(gw), src, ..Default::default() });
        let net = ip.address.trunc();
        if net.prefix_len() < net.max_prefix_len() {
            push(nl::Route { dst: net, gw: Some(gw), src, ..Default::default() });
        }
    }
    routes
}

/// What the host end of the veth holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostPlan {
    /// Each gateway as a /32 (/128).
    pub addrs: Vec<IpNet>,
    /// A link route to each pod address (without `oif`, which is the host veth).
    pub routes: Vec<nl::Route>,
}

pub fn plan_host(result: &CniResult, iface: usize) -> HostPlan {
    let mut plan = HostPlan::default();
    for ip in ips_of(result, iface) {
        if let Some(gw) = ip.gateway.map(host_prefix)
            && !plan.addrs.contains(&gw)
        {
            plan.addrs.push(gw);
        }
        let dst = host_prefix(ip.address.addr());
        if !plan.routes.iter().any(|r| r.dst == dst) {
            plan.routes.push(nl::Route { dst, ..Default::default() });
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni_spec::{Route, Version};

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn result() -> CniResult {
        CniResult {
            cni_version: Version::V1_0_0,
            ips: vec![
                IpConfig { address: net("10.1.1.5/24"), gateway: Some(ip("10.1.1.1")), interface: None },
                IpConfig { address: net("fd00:1::5/64"), gateway: None, interface: None },
            ],
            routes: vec![Route::new(net("0.0.0.0/0"), None)],
            ..Default::default()
        }
    }

    #[test]
    fn gateways_filled_and_addresses_assigned_to_the_container() {
        let mut r = result();
        plan_gateways(&mut r).unwrap();
        assert!(r.ips.iter().all(|i| i.interface == Some(CONTAINER_IFACE)));
        assert_eq!(r.ips[0].gateway, Some(ip("10.1.1.1")));
        assert_eq!(r.ips[1].gateway, Some(ip("fd00:1::1")));
    }

    #[test]
    fn gateway_must_differ_from_the_pod_and_match_its_family() {
        let mut r = result();
        r.ips[0].gateway = Some(ip("10.1.1.5"));
        assert_eq!(plan_gateways(&mut r).unwrap_err().code.code(), 7);
        let mut r = result();
        r.ips[0].gateway = Some(ip("fd00:1::1"));
        assert_eq!(plan_gateways(&mut r).unwrap_err().code.code(), 7);
    }

    #[test]
    fn container_routes_go_through_the_gateway() {
        let mut r = result();
        plan_gateways(&mut r).unwrap();
        let routes = container_routes(&r, CONTAINER_IFACE);
        let shown: Vec<_> = routes.iter().map(|r| (r.dst, r.gw, r.src)).collect();
        assert_eq!(
            shown,
            vec![
                (net("10.1.1.1/32"), None, Some(ip("10.1.1.5"))),
                (net("10.1.1.0/24"), Some(ip("10.1.1.1")), Some(ip("10.1.1.5"))),
                (net("fd00:1::1/128"), None, Some(ip("fd00:1::5"))),
                (net("fd00:1::/64"), Some(ip("fd00:1::1")), Some(ip("fd00:1::5"))),
            ]
        );
        assert_eq!(prefix_routes(&r, CONTAINER_IFACE), vec![net("10.1.1.0/24"), net("fd00:1::/64")]);
    }

    #[test]
    fn two_addresses_in_one_subnet_share_routes() {
        let mut r = result();
        r.ips[1] = IpConfig { address: net("10.1.1.6/24"), gateway: Some(ip("10.1.1.1")), interface: None };
        plan_gateways(&mut r).unwrap();
        assert_eq!(container_routes(&r, CONTAINER_IFACE).len(), 2);
        let host = plan_host(&r, CONTAINER_IFACE);
        assert_eq!(host.addrs, vec![net("10.1.1.1/32")]);
        let dsts: Vec<_> = host.routes.iter().map(|r| r.dst).collect();
        assert_eq!(dsts, vec![net("10.1.1.5/32"), net("10.1.1.6/32")]);
    }

    #[test]
    fn host_prefix_addresses_have_no_subnet_route() {
        let mut r = result();
        r.ips.truncate(1);
        r.ips[0].address = net("10.1.1.5/32");
        plan_gateways(&mut r).unwrap();
        assert!(prefix_routes(&r, CONTAINER_IFACE).is_empty());
        let routes = container_routes(&r, CONTAINER_IFACE);
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].dst, net("10.1.1.1/32"));
    }

    #[test]
    fn host_holds_gateways_and_routes_pods() {
        let mut r = result();
        plan_gateways(&mut r).unwrap();
        let host = plan_host(&r, CONTAINER_IFACE);
        assert_eq!(host.addrs, vec![net("10.1.1.1/32"), net("fd00:1::1/128")]);
        let dsts: Vec<_> = host.routes.iter().map(|r| r.dst).collect();
        assert_eq!(dsts, vec![net("10.1.1.5/32"), net("fd00:1::5/128")]);
    }
}
