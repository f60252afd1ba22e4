//! Gateways (pure): which addresses the bridge must hold and which default routes the pod
//! gets, derived from the IPAM result as the reference does — a missing gateway is the
//! subnet's first host when the bridge is a gateway, and `isDefaultGateway` adds a default
//! route per family unless IPAM already gave one.

use cni_spec::{CniResult, Route};
use ipnet::IpNet;

use super::conf::BridgeConf;
use crate::container::first_host;

/// Index of the container interface in a bridge result (bridge, host veth, container).
pub const CONTAINER_IFACE: usize = 2;

/// Completes `result` in place and returns the addresses the bridge must hold.
pub fn plan_gateways(result: &mut CniResult, conf: &BridgeConf) -> Vec<IpNet> {
    let mut bridge_addrs = Vec::new();
    for ip in &mut result.ips {
        ip.interface = Some(CONTAINER_IFACE);
        if ip.gateway.is_none() && conf.is_gateway {
            ip.gateway = Some(first_host(&ip.address));
        }
        if conf.is_gateway
            && let Some(gw) = ip.gateway
            && let Ok(net) = IpNet::new(gw, ip.address.prefix_len())
            && !bridge_addrs.contains(&net)
        {
            bridge_addrs.push(net);
        }
    }
    if conf.is_default_gateway {
        for v4 in [true, false] {
            let gw =
                result.ips.iter().filter(|ip| ip.address.addr().is_ipv4() == v4).find_map(|ip| ip.gateway);
            let has_default = result
                .routes
                .iter()
                .any(|r| r.dst.prefix_len() == 0 && r.dst.addr().is_ipv4() == v4 && r.gw.is_some());
            if let (Some(gw), false) = (gw, has_default) {
                let any: IpNet = if v4 { "0.0.0.0/0" } else { "::/0" }.parse().expect("literal prefix");
                result.routes.push(Route::new(any, Some(gw)));
            }
        }
    }
    bridge_addrs
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni_spec::{IpConfig, Version};

    fn conf(gw: bool, default_gw: bool) -> BridgeConf {
        BridgeConf { is_gateway: gw || default_gw, is_default_gateway: default_gw, ..BridgeConf::for_tests() }
    }

    fn result() -> CniResult {
        CniResult {
            cni_version: Version::V1_0_0,
            ips: vec![
                IpConfig { address: "10.22.0.7/16".parse().unwrap(), gateway: None, interface: None },
                IpConfig {
                    address: "fd00:22::7/64".parse().unwrap(),
                    gateway: Some("fd00:22::fe".parse().unwrap()),
                    interface: None,
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn gateway_fills_missing_and_bridge_gets_prefixes() {
        let mut r = result();
        let addrs = plan_gateways(&mut r, &conf(true, false));
        assert_eq!(r.ips[0].gateway, Some("10.22.0.1".parse().unwrap()));
        assert!(r.ips.iter().all(|ip| ip.interface == Some(2)));
        assert_eq!(addrs, vec!["10.22.0.1/16".parse::<IpNet>().unwrap(), "fd00:22::fe/64".parse().unwrap()]);
        assert!(r.routes.is_empty());
    }

    #[test]
    fn default_gateway_adds_one_default_route_per_family() {
        let mut r = result();
        r.routes.push(Route::new("0.0.0.0/0".parse().unwrap(), Some("10.22.0.99".parse().unwrap())));
        plan_gateways(&mut r, &conf(false, true));
        let defaults: Vec<_> = r.routes.iter().filter(|x| x.dst.prefix_len() == 0).collect();
        assert_eq!(defaults.len(), 2);
        assert_eq!(defaults[1].gw, Some("fd00:22::fe".parse().unwrap()));
    }

    #[test]
    fn no_gateway_no_bridge_address() {
        let mut r = result();
        assert!(plan_gateways(&mut r, &conf(false, false)).is_empty());
        assert_eq!(r.ips[0].gateway, None);
    }
}
