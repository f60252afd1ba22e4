//! What source-based routing needs for one interface, computed from prevResult and the
//! container's current rules and routes (pure). As the reference: per address, the first
//! table from 100 on that no rule and no route uses; in it a default route via the gateway
//! and copies of the interface's main-table routes that belong to the address; then the
//! interface's routes leave the main table.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cni_spec::{CniResult, Error, IpConfig};
use ipnet::IpNet;
use nl::Route;

use super::conf::{FIRST_TABLE, SbrConf};

/// The routing of one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TablePlan {
    /// The address, with its prefix.
    pub addr: IpNet,
    pub table: u32,
    /// Routes to put in `table`: the default route first, when there is a gateway.
    pub routes: Vec<Route>,
}

/// The whole change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SbrPlan {
    pub tables: Vec<TablePlan>,
    /// Main-table routes of the interface to delete.
    pub remove: Vec<Route>,
    /// Main-table routes to add or replace (subnet routes with a source hint).
    pub hints: Vec<Route>,
}

/// The addresses of `ifname` in the result: those whose `interface` names it, or names
/// nothing (the reference assumes a match then). No address at all is an error.
pub fn own_ips<'a>(result: &'a CniResult, ifname: &str) -> Result<Vec<&'a IpConfig>, Error> {
    if result.ips.is_empty() {
        return Err(Error::invalid_config(format!("sbr: prevResult has no IP addresses for {ifname}")));
    }
    Ok(result
        .ips
        .iter()
        .filter(|ip| match ip.interface.and_then(|i| result.interfaces.get(i)) {
            Some(iface) => iface.name == ifname,
            None => true,
        })
        .collect())
}

/// The first table from `from` on that is not in `used`.
pub fn free_table(used: &BTreeSet<u32>, from: u32) -> u32 {
    (from..=u32::MAX).find(|t| !used.contains(t)).unwrap_or(from)
}

fn default_dst(ip: IpAddr) -> IpNet {
    match ip {
        IpAddr::V4(_) => IpNet::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        IpAddr::V6(_) => IpNet::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
    .unwrap_or_default()
}

/// Whether a main-table route of the interface belongs with `addr`: its source or gateway
/// is in the address's subnet, or it has neither (a plain on-link route).
fn belongs(route: &Route, addr: &IpNet) -> bool {
    let within = |ip: Option<IpAddr>| ip.is_some_and(|ip| addr.contains(&ip));
    within(route.src) || within(route.gw) || (route.src.is_none() && route.gw.is_none())
}

/// Plans the tables. `link_routes` are the interface's main-table routes, `used` the tables
/// any rule or route refers to.
pub fn plan(
    conf: &SbrConf,
    ips: &[&IpConfig],
    oif: u32,
    link_routes: &[Route],
    used: &BTreeSet<u32>,
) -> SbrPlan {
    let mut used = used.clone();
    let mut tables = Vec::new();
    for ip in ips {
        let table = free_table(&used, FIRST_TABLE);
        used.insert(table);
        let addr = ip.address;
        let mut routes = Vec::new();
        if let Some(gw) = conf.gateway_for(addr.addr()).or(ip.gateway) {
            let dst = default_dst(addr.addr());
            routes.push(Route { dst, gw: Some(gw), oif: Some(oif), table: Some(table), ..Route::default() });
        }
        for r in link_routes.iter().filter(|r| belongs(r, &addr)) {
            routes.push(Route { table: Some(table), ..r.clone() });
        }
        tables.push(TablePlan { addr, table, routes });
    }
    let (remove, hints) = if conf.add_source_hints {
        let hints = ips
            .iter()
            .map(|ip| Route {
                dst: ip.address.trunc(),
                oif: Some(oif),
                src: Some(ip.address.addr()),
                table: Some(nl::route::TABLE_MAIN),
                scope: Some(nl::route::SCOPE_LINK),
                ..Route::default()
            })
            .collect();
        let remove = link_routes.iter().filter(|r| r.scope != Some(nl::route::SCOPE_LINK)).cloned().collect();
        (remove, hints)
    } else {
        (link_routes.to_vec(), Vec::new())
    };
    SbrPlan { tables, remove, hints }
}

/// Every table referred to by a rule or a route.
pub fn used_tables(rules: &[nl::Rule], routes: &[Route]) -> BTreeSet<u32> {
    rules.iter().map(|r| r.table).chain(routes.iter().filter_map(|r| r.table)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni_spec::Interface;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ipc(addr: &str, gw: &str, iface: Option<usize>) -> IpConfig {
        IpConfig { address: net(addr), gateway: gw.parse().ok(), interface: iface }
    }

    fn route(dst: &str, gw: Option<&str>, src: Option<&str>, scope: u8) -> Route {
        Route {
            dst: net(dst),
            gw: gw.map(|g| g.parse().unwrap()),
            src: src.map(|s| s.parse().unwrap()),
            oif: Some(2),
            table: Some(254),
            scope: Some(scope),
            ..Route::default()
        }
    }

    #[test]
    fn own_ips_follow_the_interface_index() {
        let result = CniResult {
            interfaces: vec![
                Interface { name: "eth0".into(), ..Default::default() },
                Interface { name: "net1".into(), ..Default::default() },
            ],
            ips: vec![
                ipc("10.1.0.5/24", "", Some(0)),
                ipc("10.2.0.5/24", "", Some(1)),
                ipc("10.3.0.5/24", "", None),
            ],
            ..Default::default()
        };
        let own: Vec<String> =
            own_ips(&result, "net1").unwrap().iter().map(|i| i.address.to_string()).collect();
        assert_eq!(own, ["10.2.0.5/24", "10.3.0.5/24"]);
        let empty = CniResult::default();
        assert_eq!(own_ips(&empty, "eth0").unwrap_err().code.code(), 7);
    }

    #[test]
    fn tables_skip_used_ids_and_copy_the_address_routes() {
        let a = ipc("10.1.0.5/24", "10.1.0.1", Some(0));
        let b = ipc("fd00::5/64", "fd00::1", Some(0));
        let link_routes = vec![
            route("10.1.0.0/24", None, Some("10.1.0.5"), 253),
            route("10.50.0.0/16", Some("10.1.0.254"), None, 0),
            route("fd00::/64", None, None, 0),
            route("10.60.0.0/16", Some("10.9.0.1"), None, 0),
        ];
        let used: BTreeSet<u32> = [100, 101, 254].into();
        let p = plan(&SbrConf::default(), &[&a, &b], 2, &link_routes, &used);
        assert_eq!((p.tables[0].table, p.tables[1].table), (102, 103));
        let t0: Vec<String> = p.tables[0].routes.iter().map(|r| format!("{} {:?}", r.dst, r.gw)).collect();
        assert_eq!(
            t0,
            [
                "0.0.0.0/0 Some(10.1.0.1)",
                "10.1.0.0/24 None",
                "10.50.0.0/16 Some(10.1.0.254)",
                "fd00::/64 None"
            ]
        );
        assert!(p.tables[0].routes.iter().all(|r| r.table == Some(102) && r.oif == Some(2)));
        assert_eq!(p.tables[1].routes[0].dst, net("::/0"));
        assert_eq!(p.remove, link_routes, "everything leaves the main table");
        assert!(p.hints.is_empty());
    }

    #[test]
    fn static_gateways_win_and_hints_keep_link_routes() {
        let a = ipc("10.1.0.5/24", "10.1.0.1", Some(0));
        let link_routes = vec![
            route("10.1.0.0/24", None, Some("10.1.0.5"), 253),
            route("0.0.0.0/0", Some("10.1.0.1"), None, 0),
        ];
        let conf = SbrConf {
            gateways: vec!["10.1.0.99".parse().unwrap()],
            add_source_hints: true,
            ..Default::default()
        };
        let p = plan(&conf, &[&a], 2, &link_routes, &BTreeSet::new());
        assert_eq!(p.tables[0].routes[0].gw, Some("10.1.0.99".parse().unwrap()));
        assert_eq!(p.remove, vec![link_routes[1].clone()]);
        assert_eq!(p.hints[0].dst, net("10.1.0.0/24"));
        assert_eq!(p.hints[0].src, Some("10.1.0.5".parse().unwrap()));
    }
}
