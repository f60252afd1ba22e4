//! What the kernel should hold for a set of peers, computed without touching it, and the
//! difference between that and what it holds.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::Peer;

/// The route protocol number twill stamps on its routes (`ip route show proto 116`), so the
/// reconciler can tell its own routes from everyone else's and remove the stale ones.
pub const PROTO_TWILL: u8 = 116;

/// `ip route replace DST via GW dev OIF [onlink] proto 116`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteSpec {
    pub dst: IpNet,
    pub gw: IpAddr,
    pub oif: u32,
    pub onlink: bool,
}

/// `bridge fdb replace MAC dev twill.vxlan dst DST self permanent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FdbSpec {
    pub mac: [u8; 6],
    pub dst: IpAddr,
}

/// `ip neigh replace IP lladdr MAC dev twill.vxlan nud permanent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NeighSpec {
    pub ip: IpAddr,
    pub mac: [u8; 6],
}

/// Kernel entries: desired, observed, or to be changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub routes: Vec<RouteSpec>,
    pub fdb: Vec<FdbSpec>,
    pub neigh: Vec<NeighSpec>,
}

impl Plan {
    pub fn len(&self) -> usize {
        self.routes.len() + self.fdb.len() + self.neigh.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn sorted(mut self) -> Plan {
        self.routes.sort();
        self.routes.dedup();
        self.fdb.sort();
        self.fdb.dedup();
        self.neigh.sort();
        self.neigh.dedup();
        self
    }
}

/// The peers whose pod subnets overlap no earlier peer's. Subnet leases make them disjoint; a
/// datastore written by something else may not, and two routes (or two VTEP neighbours with
/// different MACs) for one destination cannot both be in the kernel: a plan holding both
/// would never be in place, and every reconcile would rewrite it. The first claim wins.
pub fn distinct_subnets(peers: &[Peer]) -> Vec<&Peer> {
    let mut kept: Vec<&Peer> = Vec::new();
    let subnets = |p: &Peer| [Some(p.subnet), p.subnet6].into_iter().flatten().collect::<Vec<_>>();
    for p in peers {
        let clash = kept
            .iter()
            .any(|k| subnets(k).iter().any(|a| subnets(p).iter().any(|b| crate::subnet::overlaps(a, b))));
        if !clash {
            kept.push(p);
        }
    }
    kept
}

/// host-gw: each peer's pod subnet via the peer's node address on the underlay. An IPv6
/// subnet needs an IPv6 next hop, so it is routed only when the peer published one.
pub fn plan_host_gw(peers: &[Peer], underlay: u32) -> Plan {
    let mut plan = Plan::default();
    for p in distinct_subnets(peers) {
        let hops = [(Some(p.subnet), Some(p.node_ip)), (p.subnet6, p.node_ip6.or(Some(p.node_ip)))];
        for (dst, gw) in hops {
            let (Some(dst), Some(gw)) = (dst, gw) else { continue };
            if dst.addr().is_ipv4() == gw.is_ipv4() {
                plan.routes.push(RouteSpec { dst, gw, oif: underlay, onlink: false });
            }
        }
    }
    plan.sorted()
}

/// vxlan, flannel's layout: the peer's VTEP address is the network address of its pod
/// subnet. Per peer: FDB (VTEP MAC → node address), neighbour (VTEP address → VTEP MAC) and
/// a route to the pod subnet via the VTEP address, onlink on the vxlan device. Peers that
/// published no VTEP MAC (another backend) are skipped.
pub fn plan_vxlan(peers: &[Peer], vxlan: u32) -> Plan {
    let mut plan = Plan::default();
    for p in distinct_subnets(peers) {
        let Some(mac) = p.vtep_mac else { continue };
        plan.fdb.push(FdbSpec { mac, dst: p.node_ip });
        for dst in [Some(p.subnet), p.subnet6].into_iter().flatten() {
            let gw = dst.network();
            plan.neigh.push(NeighSpec { ip: gw, mac });
            plan.routes.push(RouteSpec { dst, gw, oif: vxlan, onlink: true });
        }
    }
    plan.sorted()
}

/// What to remove and what to add to turn `actual` into `desired`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub remove: Plan,
    pub add: Plan,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.add.is_empty()
    }
}

/// Entries of `a` whose identity (`key`) is missing from `b`, or present there with other
/// attributes.
fn missing<T: Copy + PartialEq, K: Ord>(a: &[T], b: &[T], key: impl Fn(&T) -> K) -> Vec<T> {
    let b: BTreeMap<K, &T> = b.iter().map(|x| (key(x), x)).collect();
    a.iter().filter(|x| b.get(&key(x)).is_none_or(|y| *y != *x)).copied().collect()
}

/// The changes from `actual` to `desired`. Routes are identified by destination, gateway and
/// device (the kernel does not report `onlink` the same way for every family), FDB entries by
/// MAC and remote, neighbours by address.
pub fn plan_changes(desired: &Plan, actual: &Plan) -> Changes {
    let route_key = |r: &RouteSpec| (r.dst, r.gw, r.oif);
    let route_eq = |a: &[RouteSpec], b: &[RouteSpec]| -> Vec<RouteSpec> {
        let b: Vec<(IpNet, IpAddr, u32)> = b.iter().map(route_key).collect();
        a.iter().filter(|r| !b.contains(&route_key(r))).copied().collect()
    };
    Changes {
        remove: Plan {
            routes: route_eq(&actual.routes, &desired.routes),
            fdb: missing(&actual.fdb, &desired.fdb, |f| (f.mac, f.dst)),
            neigh: missing(&actual.neigh, &desired.neigh, |n| n.ip),
        },
        add: Plan {
            routes: route_eq(&desired.routes, &actual.routes),
            fdb: missing(&desired.fdb, &actual.fdb, |f| (f.mac, f.dst)),
            neigh: missing(&desired.neigh, &actual.neigh, |n| n.ip),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC1: [u8; 6] = [0x0e, 1, 1, 1, 1, 1];
    const MAC2: [u8; 6] = [0x0e, 2, 2, 2, 2, 2];

    fn peer(n: u8, mac: Option<[u8; 6]>, v6: bool) -> Peer {
        Peer {
            name: format!("node-{n}"),
            node_ip: format!("10.100.0.{n}").parse().unwrap(),
            node_ip6: None,
            subnet: format!("10.244.{n}.0/24").parse().unwrap(),
            subnet6: v6.then(|| format!("fd00:10:244:{n}::/64").parse().unwrap()),
            vtep_mac: mac,
            bgp: None,
        }
    }

    /// fuzz: record. Two node records claiming one subnet with different VTEP MACs gave a
    /// plan that was never in place (two neighbours for one address).
    #[test]
    fn peers_claiming_a_taken_subnet_are_left_out() {
        let mut b = peer(1, Some(MAC2), true);
        b.name = "node-b".into();
        let mut c = peer(3, Some(MAC2), false);
        c.subnet = "10.244.1.0/25".parse().unwrap();
        let peers = [peer(1, Some(MAC1), true), b, c, peer(2, Some(MAC2), false)];
        let dsts = |plan: &Plan| plan.routes.iter().map(|r| r.dst.to_string()).collect::<Vec<_>>();
        let (host_gw, vxlan) = (plan_host_gw(&peers, 2), plan_vxlan(&peers, 3));
        for plan in [&host_gw, &vxlan] {
            assert!(plan_changes(plan, plan).is_empty(), "{plan:?}");
        }
        assert_eq!(dsts(&host_gw), ["10.244.1.0/24", "10.244.2.0/24"], "no IPv6 next hop: no IPv6 route");
        assert_eq!(dsts(&vxlan), ["10.244.1.0/24", "10.244.2.0/24", "fd00:10:244:1::/64"]);
        assert!(
            plan_vxlan(&peers, 3).neigh.iter().all(|n| n.ip.to_string() == "10.244.2.0" || n.mac == MAC1)
        );
    }

    fn route(dst: &str, gw: &str, oif: u32, onlink: bool) -> RouteSpec {
        RouteSpec { dst: dst.parse().unwrap(), gw: gw.parse().unwrap(), oif, onlink }
    }

    #[test]
    fn host_gw_routes_via_node_addresses() {
        let mut p2 = peer(2, None, true);
        let plan = plan_host_gw(&[peer(3, None, true), p2.clone()], 7);
        // No IPv6 next hop: the IPv6 subnets are not routed.
        assert_eq!(
            plan.routes,
            vec![
                route("10.244.2.0/24", "10.100.0.2", 7, false),
                route("10.244.3.0/24", "10.100.0.3", 7, false)
            ]
        );
        assert!(plan.fdb.is_empty() && plan.neigh.is_empty());
        p2.node_ip6 = Some("fd00:100::2".parse().unwrap());
        let plan = plan_host_gw(&[p2], 7);
        assert_eq!(plan.routes[1], route("fd00:10:244:2::/64", "fd00:100::2", 7, false));
    }

    #[test]
    fn vxlan_fdb_neigh_and_onlink_routes_per_peer() {
        let plan =
            plan_vxlan(&[peer(2, Some(MAC2), true), peer(1, Some(MAC1), false), peer(4, None, false)], 9);
        assert_eq!(
            plan.fdb,
            vec![
                FdbSpec { mac: MAC1, dst: "10.100.0.1".parse().unwrap() },
                FdbSpec { mac: MAC2, dst: "10.100.0.2".parse().unwrap() }
            ]
        );
        assert_eq!(
            plan.neigh.iter().map(|n| (n.ip.to_string(), n.mac)).collect::<Vec<_>>(),
            vec![
                ("10.244.1.0".to_string(), MAC1),
                ("10.244.2.0".to_string(), MAC2),
                ("fd00:10:244:2::".to_string(), MAC2)
            ]
        );
        assert_eq!(
            plan.routes,
            vec![
                route("10.244.1.0/24", "10.244.1.0", 9, true),
                route("10.244.2.0/24", "10.244.2.0", 9, true),
                route("fd00:10:244:2::/64", "fd00:10:244:2::", 9, true)
            ]
        );
    }

    #[test]
    fn changes_add_missing_and_remove_stale() {
        let desired = plan_vxlan(&[peer(1, Some(MAC1), false), peer(2, Some(MAC2), false)], 9);
        let mut actual = plan_vxlan(&[peer(1, Some(MAC1), false), peer(3, Some(MAC2), false)], 9);
        // Someone deleted node-1's route; node-3 left.
        actual.routes.retain(|r| r.dst.to_string() != "10.244.1.0/24");
        let ch = plan_changes(&desired, &actual);
        assert_eq!(
            ch.add.routes,
            vec![
                route("10.244.1.0/24", "10.244.1.0", 9, true),
                route("10.244.2.0/24", "10.244.2.0", 9, true)
            ]
        );
        assert_eq!(ch.remove.routes, vec![route("10.244.3.0/24", "10.244.3.0", 9, true)]);
        assert_eq!(ch.add.fdb, vec![FdbSpec { mac: MAC2, dst: "10.100.0.2".parse().unwrap() }]);
        assert_eq!(ch.remove.fdb, vec![FdbSpec { mac: MAC2, dst: "10.100.0.3".parse().unwrap() }]);
        assert_eq!(ch.add.neigh.len(), 1);
        assert_eq!(ch.remove.neigh.len(), 1);
        assert!(plan_changes(&desired, &desired).is_empty());
    }

    #[test]
    fn changed_neighbour_mac_is_replaced_and_onlink_flag_is_not_identity() {
        let desired = plan_vxlan(&[peer(1, Some(MAC1), false)], 9);
        let mut actual = desired.clone();
        actual.neigh[0].mac = MAC2;
        actual.routes[0].onlink = false;
        let ch = plan_changes(&desired, &actual);
        assert_eq!(ch.add.neigh, desired.neigh);
        assert_eq!(ch.remove.neigh, actual.neigh);
        assert!(ch.add.routes.is_empty() && ch.remove.routes.is_empty());
    }
}
