//! What multus answers and records (pure):
//! - the runtime's result: the cluster network's, with every other attachment's interfaces
//!   and addresses appended (addresses re-pointed at their interfaces' new positions), the
//!   cluster network's DNS, and its routes — with the default route where `default-route`
//!   put it;
//! - network-status: one entry per pod interface of each attachment, by the rules of Multus's
//!   `CreateNetworkStatuses` (the cluster network's entry is `default`; addresses go to the
//!   interface they name, those naming none to the attachment's last pod interface; `gateway`
//!   lists the attachment's default routes).

use std::net::IpAddr;

use cluster::NetworkStatus;
use cluster::multinet::StatusDns;
use cni_spec::{CniResult, Dns, Route};
use ipnet::IpNet;

use super::plan::Delegate;

fn is_default(r: &Route) -> bool {
    r.dst.prefix_len() == 0
}

fn default_dst(gw: IpAddr) -> IpNet {
    let any: IpAddr = if gw.is_ipv4() { IpAddr::from([0u8; 4]) } else { IpAddr::from([0u8; 16]) };
    IpNet::new(any, 0).unwrap_or_default()
}

/// An attachment's result after the default-route moves: its default routes of a claimed
/// family dropped, and the default routes it claims itself added.
pub fn adjust_routes(result: &mut CniResult, claimed: (bool, bool), d: &Delegate) {
    result.routes.retain(|r| !is_default(r) || !(if r.dst.addr().is_ipv4() { claimed.0 } else { claimed.1 }));
    for gw in &d.default_route {
        result.routes.push(Route::new(default_dst(*gw), Some(*gw)));
    }
}

/// The result the runtime gets. `attached[0]` is the cluster network.
pub fn merge(attached: &[(Delegate, CniResult)]) -> CniResult {
    let Some((_, first)) = attached.first() else { return CniResult::default() };
    let mut merged = first.clone();
    for (d, r) in &attached[1..] {
        let offset = merged.interfaces.len();
        merged.interfaces.extend(r.interfaces.iter().cloned());
        merged.ips.extend(r.ips.iter().cloned().map(|mut ip| {
            ip.interface = ip.interface.map(|i| i + offset);
            ip
        }));
        if !d.default_route.is_empty() {
            merged.routes.extend(r.routes.iter().filter(|r| is_default(r)).cloned());
        }
    }
    merged
}

fn status_dns(d: &Dns) -> StatusDns {
    StatusDns {
        nameservers: d.nameservers.clone(),
        domain: d.domain.clone().unwrap_or_default(),
        search: d.search.clone(),
        options: d.options.clone(),
    }
}

/// The network-status entries of one attachment.
pub fn statuses(d: &Delegate, r: &CniResult) -> Vec<NetworkStatus> {
    let gateway: Vec<String> =
        r.routes.iter().filter(|x| is_default(x)).filter_map(|x| x.gw).map(|g| g.to_string()).collect();
    let base = NetworkStatus {
        name: d.status_name.clone(),
        default: false,
        dns: status_dns(&r.dns),
        gateway,
        ..NetworkStatus::default()
    };
    if r.interfaces.len() == 1 {
        let i = &r.interfaces[0];
        let pod_side = i.sandbox.as_deref().is_some_and(|s| !s.is_empty());
        return vec![NetworkStatus {
            interface: if pod_side { i.name.clone() } else { String::new() },
            mac: if pod_side { i.mac.clone().unwrap_or_default() } else { String::new() },
            mtu: if pod_side { i.mtu } else { None },
            ips: r.ips.iter().map(|ip| ip.address.addr().to_string()).collect(),
            default: d.cluster,
            ..base
        }];
    }
    let pod_ifaces: Vec<usize> = (0..r.interfaces.len())
        .filter(|&i| r.interfaces[i].sandbox.as_deref().is_some_and(|s| !s.is_empty()))
        .collect();
    // The default one: the first interface an address with a gateway names, else the first.
    let gw_iface =
        r.ips.iter().find(|ip| ip.gateway.is_some() && ip.interface.is_some()).and_then(|ip| ip.interface);
    let default_iface = gw_iface.filter(|i| pod_ifaces.contains(i)).or(pod_ifaces.first().copied());
    let mut out: Vec<NetworkStatus> = pod_ifaces
        .iter()
        .map(|&i| NetworkStatus {
            interface: r.interfaces[i].name.clone(),
            mac: r.interfaces[i].mac.clone().unwrap_or_default(),
            mtu: r.interfaces[i].mtu,
            default: d.cluster && Some(i) == default_iface,
            ..base.clone()
        })
        .collect();
    for ip in &r.ips {
        let at = match ip.interface {
            Some(i) => pod_ifaces.iter().position(|&p| p == i),
            None => out.len().checked_sub(1),
        };
        if let Some(s) = at.and_then(|a| out.get_mut(a)) {
            s.ips.push(ip.address.addr().to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni_spec::Version;
    use serde_json::{Map, json};

    fn result(v: serde_json::Value) -> CniResult {
        CniResult::from_json(&v).unwrap()
    }

    fn delegate(name: &str, ifname: &str, cluster: bool) -> Delegate {
        Delegate {
            status_name: name.into(),
            ifname: ifname.into(),
            config: Map::new(),
            conflist: false,
            cluster,
            capability_args: Map::new(),
            default_route: Vec::new(),
        }
    }

    fn bridge() -> CniResult {
        result(json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "twill0", "mac": "02:00:00:00:00:01"}, {"name": "veth1", "mac": "02:00:00:00:00:02"},
                           {"name": "eth0", "mac": "0a:58:0a:f4:01:05", "sandbox": "/run/netns/p"}],
            "ips": [{"address": "10.244.1.5/24", "gateway": "10.244.1.1", "interface": 2}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.244.1.1"}],
            "dns": {"nameservers": ["10.96.0.10"]}}))
    }

    fn macvlan(ifname: &str, ip: &str) -> CniResult {
        result(json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": ifname, "mac": "02:00:00:00:00:07", "sandbox": "/run/netns/p"}],
            "ips": [{"address": ip, "gateway": "10.10.0.1", "interface": 0}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.10.0.1"}]}))
    }

    #[test]
    fn the_runtime_gets_every_interface_and_address() {
        let attached = vec![
            (delegate("twill", "eth0", true), bridge()),
            (delegate("x/data", "net1", false), macvlan("net1", "10.10.0.2/16")),
            (delegate("x/other", "net2", false), macvlan("net2", "10.20.0.2/16")),
        ];
        let m = merge(&attached);
        let names: Vec<&str> = m.interfaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["twill0", "veth1", "eth0", "net1", "net2"]);
        let ips: Vec<(String, Option<usize>)> =
            m.ips.iter().map(|i| (i.address.to_string(), i.interface)).collect();
        assert_eq!(
            ips,
            [
                ("10.244.1.5/24".into(), Some(2)),
                ("10.10.0.2/16".into(), Some(3)),
                ("10.20.0.2/16".into(), Some(4))
            ]
        );
        assert_eq!(m.routes, bridge().routes, "the secondaries' routes are theirs");
        assert_eq!(m.dns, bridge().dns);
        for v in [Version::V0_3_1, Version::V0_4_0, Version::V1_0_0, Version::V1_1_0] {
            let back = CniResult::from_json(&m.to_json(v).unwrap()).unwrap();
            assert_eq!(back.ips.len(), 3, "{v}");
        }
    }

    #[test]
    fn default_route_moves_to_the_claiming_attachment() {
        let mut data = delegate("x/data", "net1", false);
        data.default_route = vec!["10.10.0.254".parse().unwrap()];
        let (mut cluster_r, mut data_r) = (bridge(), macvlan("net1", "10.10.0.2/16"));
        let cluster_d = delegate("twill", "eth0", true);
        adjust_routes(&mut cluster_r, (true, false), &cluster_d);
        adjust_routes(&mut data_r, (true, false), &data);
        assert!(cluster_r.routes.is_empty());
        assert_eq!(
            data_r.routes,
            vec![Route::new("0.0.0.0/0".parse().unwrap(), Some("10.10.0.254".parse().unwrap()))]
        );
        let m = merge(&[(cluster_d.clone(), cluster_r.clone()), (data.clone(), data_r.clone())]);
        assert_eq!(m.routes, data_r.routes);
        assert!(statuses(&cluster_d, &cluster_r)[0].gateway.is_empty());
        assert_eq!(statuses(&data, &data_r)[0].gateway, ["10.10.0.254"]);
    }

    #[test]
    fn network_status_follows_multus() {
        let s = statuses(&delegate("twill", "eth0", true), &bridge());
        assert_eq!(s.len(), 1, "host-side interfaces are not pod interfaces");
        let e = &s[0];
        assert_eq!(
            (e.name.as_str(), e.interface.as_str(), e.mac.as_str(), e.default),
            ("twill", "eth0", "0a:58:0a:f4:01:05", true)
        );
        assert_eq!(
            (e.ips.clone(), e.gateway.clone(), e.dns.nameservers.clone()),
            (vec!["10.244.1.5".to_string()], vec!["10.244.1.1".to_string()], vec!["10.96.0.10".to_string()])
        );
        let s = statuses(&delegate("x/data", "net1", false), &macvlan("net1", "10.10.0.2/16"));
        assert_eq!(
            (s[0].interface.as_str(), s[0].ips.clone(), s[0].default),
            ("net1", vec!["10.10.0.2".to_string()], false)
        );
        let none = result(json!({"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.2/24"}]}));
        assert!(statuses(&delegate("n", "net3", false), &none).is_empty(), "no interface, no entry");
    }
}
