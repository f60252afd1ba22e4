//! The node-side effects besides the firewall: letting 127/8 cross to the pod's interface
//! (`route_localnet`), and dropping conntrack entries that would keep UDP flowing the old way.

use std::net::IpAddr;

use cni_spec::Error;
use fw::ct::UdpFlow;
use fw::nft::Conn;

use super::conf::{PortmapConf, Protocol};
use crate::kernel::{host_handle, host_netns, nl_error};

/// The interface the node routes `pod` through: the most specific main-table route with an
/// output interface (what `ip route get` would pick for a plain unicast destination).
pub fn routable_iface(routes: &[nl::Route], pod: IpAddr) -> Option<u32> {
    routes
        .iter()
        .filter(|r| {
            r.table.is_none_or(|t| t == nl::route::TABLE_MAIN)
                && r.kind.is_none_or(|k| k == nl::route::KIND_UNICAST)
        })
        .filter(|r| r.oif.is_some() && r.dst.contains(&pod))
        .max_by_key(|r| (r.dst.prefix_len(), std::cmp::Reverse(r.metric.unwrap_or(0))))
        .and_then(|r| r.oif)
}

/// Sets `route_localnet` on the interface towards `pod`, so that connections the node makes
/// to 127.0.0.1:hostPort may leave with a loopback source (masqueraded on the way out), as
/// the reference does. Nothing routes there: nothing to do.
pub fn enable_localnet(pod: IpAddr) -> Result<(), Error> {
    let nl = host_handle()?;
    let routes = nl.route_list(Some(nl::Family::V4), Some(nl::route::TABLE_MAIN)).map_err(nl_error)?;
    let Some(index) = routable_iface(&routes, pod) else { return Ok(()) };
    let Some(link) = nl.link_by_index(index).map_err(nl_error)? else { return Ok(()) };
    let host = host_netns()?;
    let key = format!("net/ipv4/conf/{}/route_localnet", link.name);
    nl::sysctl_set(&host, &key, "1").map(drop).map_err(nl_error)
}

/// Forgets the conntrack entries of `flows` (what `conntrack -D -p udp --orig-port-dst
/// PORT [--reply-src POD]` does, over netlink). Failures are reported on stderr only: stale
/// entries expire by themselves, and the reference treats them as informative too.
pub fn flush_udp(conn: &mut Conn, flows: &[UdpFlow]) {
    if flows.is_empty() {
        return;
    }
    if let Err(e) = fw::ct::delete_udp_flows(conn, flows) {
        eprintln!("portmap: {e}");
    }
}

/// The UDP host ports mapped for the pod's families, for the ADD-time flush: flows that
/// existed before the mapping (to a host socket, or nowhere) would otherwise bypass it.
pub fn udp_ports(conf: &PortmapConf, families: &[bool]) -> Vec<UdpFlow> {
    let mut flows: Vec<UdpFlow> = conf
        .mappings
        .iter()
        .filter(|m| m.protocol == Protocol::Udp)
        .flat_map(|m| {
            let v6s = families.iter().copied().filter(|v6| m.applies_to(*v6));
            v6s.map(|v6| UdpFlow { port: m.host_port, v6, pod: None })
        })
        .collect();
    flows.sort();
    flows.dedup();
    flows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(dst: &str, oif: u32) -> nl::Route {
        nl::Route {
            dst: dst.parse().unwrap(),
            oif: Some(oif),
            table: Some(nl::route::TABLE_MAIN),
            ..Default::default()
        }
    }

    #[test]
    fn most_specific_route_wins() {
        let routes = [route("0.0.0.0/0", 1), route("10.88.0.0/16", 2), route("10.88.0.0/24", 3)];
        assert_eq!(routable_iface(&routes, "10.88.0.2".parse().unwrap()), Some(3));
        assert_eq!(routable_iface(&routes, "10.88.1.2".parse().unwrap()), Some(2));
        assert_eq!(routable_iface(&routes[1..], "192.0.2.1".parse().unwrap()), None);
    }
}
