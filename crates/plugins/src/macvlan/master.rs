//! The master (parent) link of the macvlan: the configured one, or, as in the reference, the
//! interface of the default route; looked up on the host, or in the container with
//! `linkInContainer`. A missing master or an MTU above the master's is a config error.

use cni_spec::Error;
use nl::{Handle, Link};

use super::conf::MacvlanConf;
use crate::kernel::nl_error;

/// Finds the master through `nl` (a handle in the namespace it lives in, described by
/// `place` for messages) and checks the configured MTU against it.
pub fn resolve_master(nl: &Handle, conf: &MacvlanConf, place: &str) -> Result<Link, Error> {
    let link = match &conf.master {
        Some(name) => nl.link_get(name).map_err(nl_error)?.ok_or_else(|| {
            Error::invalid_config(format!("master interface {name} does not exist in {place}"))
        })?,
        None => default_route_link(nl, place)?,
    };
    check_mtu(conf.mtu, &link.name, link.mtu)?;
    Ok(link)
}

fn default_route_link(nl: &Handle, place: &str) -> Result<Link, Error> {
    let routes = nl.route_list(None, Some(nl::route::TABLE_MAIN)).map_err(nl_error)?;
    let missing = || {
        Error::invalid_config(format!(
            "no master given and no default route in {place} to take its interface from"
        ))
    };
    let index = default_route_oif(&routes).ok_or_else(missing)?;
    nl.link_by_index(index).map_err(nl_error)?.ok_or_else(missing)
}

/// The outgoing link of the default route, IPv4 before IPv6 (the order the reference's dump
/// sees them in). Routes that go nowhere (unreachable, blackhole) do not count.
pub fn default_route_oif(routes: &[nl::Route]) -> Option<u32> {
    let defaults = |v4: bool| {
        routes.iter().filter(move |r| {
            r.dst.prefix_len() == 0
                && r.dst.addr().is_ipv4() == v4
                && r.kind.is_none_or(|k| k == nl::route::KIND_UNICAST)
        })
    };
    defaults(true).chain(defaults(false)).find_map(|r| r.oif)
}

/// The macvlan's MTU may not exceed its master's.
pub fn check_mtu(mtu: Option<u32>, master: &str, master_mtu: u32) -> Result<(), Error> {
    match mtu {
        Some(m) if m > master_mtu => Err(Error::invalid_config(format!(
            "invalid MTU {m}: must not exceed the MTU {master_mtu} of master {master}"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(dst: &str, oif: u32, kind: u8) -> nl::Route {
        nl::Route { dst: dst.parse().unwrap(), oif: Some(oif), kind: Some(kind), ..Default::default() }
    }

    #[test]
    fn default_route_prefers_ipv4_and_unicast() {
        let routes = vec![
            route("::/0", 3, 1),
            route("10.0.0.0/8", 4, 1),
            route("0.0.0.0/0", 5, 7),
            route("0.0.0.0/0", 6, 1),
        ];
        assert_eq!(default_route_oif(&routes), Some(6));
        assert_eq!(default_route_oif(&routes[..3]), Some(3));
        assert_eq!(default_route_oif(&routes[1..3]), None);
    }

    #[test]
    fn mtu_at_most_the_masters() {
        assert!(check_mtu(None, "eth0", 1500).is_ok());
        assert!(check_mtu(Some(1500), "eth0", 1500).is_ok());
        let e = check_mtu(Some(1501), "eth0", 1500).unwrap_err();
        assert_eq!(e.code.code(), 7);
        assert!(e.msg.contains("MTU 1500 of master eth0"), "{e}");
    }
}
