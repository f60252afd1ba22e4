//! Routes (`ip route add|replace|del|show`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteMetric, RouteProtocol, RouteScope, RouteType,
};

use crate::{Error, Family, Handle, Result};

/// `RT_TABLE_MAIN`.
pub const TABLE_MAIN: u32 = 254;
/// `RTPROT_BOOT`: what `ip route add` stamps on routes by default.
pub const PROTO_BOOT: u8 = 3;
/// `RT_SCOPE_LINK`.
pub const SCOPE_LINK: u8 = 253;
/// `RTN_UNICAST`.
pub const KIND_UNICAST: u8 = 1;
const SCOPE_NOWHERE: u8 = 255;

/// One route. Unset fields take iproute2's defaults when adding (table main, protocol boot,
/// scope link without a gateway) and act as wildcards when deleting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Route {
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
    pub oif: Option<u32>,
    /// Preferred source address (`src`).
    pub src: Option<IpAddr>,
    pub table: Option<u32>,
    pub scope: Option<u8>,
    /// `metric` / `RTA_PRIORITY`.
    pub metric: Option<u32>,
    pub mtu: Option<u32>,
    pub advmss: Option<u32>,
    /// `onlink`: the gateway is on this link even if no prefix covers it.
    pub onlink: bool,
    pub protocol: Option<u8>,
    /// Route type `RTN_*` (unicast 1, local 2, blackhole 6, ...); unicast when `None`.
    pub kind: Option<u8>,
}

fn route_addr(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

fn check_families(r: &Route) -> Result<()> {
    let fam = Family::of(r.dst.addr());
    let mismatch = |ip: Option<IpAddr>| ip.is_some_and(|ip| Family::of(ip) != fam);
    if mismatch(r.gw) {
        return Err(Error::invalid("route gateway", fmt_opt(r.gw), "family differs from destination"));
    }
    if mismatch(r.src) {
        return Err(Error::invalid("route source", fmt_opt(r.src), "family differs from destination"));
    }
    Ok(())
}

fn fmt_opt(ip: Option<IpAddr>) -> String {
    ip.map(|i| i.to_string()).unwrap_or_default()
}

/// The default scope iproute2 picks for a new route of `kind`.
fn default_scope(r: &Route, kind: u8, delete: bool) -> u8 {
    const LOCAL: u8 = 2;
    const BROADCAST: u8 = 3;
    const ANYCAST: u8 = 4;
    const MULTICAST: u8 = 5;
    const NAT: u8 = 10;
    match kind {
        _ if r.dst.addr().is_ipv6() => 0,
        LOCAL | NAT => 254,
        BROADCAST | ANYCAST | MULTICAST => SCOPE_LINK,
        _ if delete => SCOPE_NOWHERE,
        _ if r.gw.is_none() => SCOPE_LINK,
        _ => 0,
    }
}

/// The `RTM_NEWROUTE`/`RTM_DELROUTE` body for `r`.
pub(crate) fn build_route(r: &Route, delete: bool) -> RouteMessage {
    let mut m = RouteMessage::default();
    let table = r.table.unwrap_or(TABLE_MAIN);
    let kind = r.kind.unwrap_or(if delete { 0 } else { KIND_UNICAST });
    let h = &mut m.header;
    h.address_family = Family::of(r.dst.addr()).af();
    h.destination_prefix_length = r.dst.prefix_len();
    // Tables above 255 only fit in RTA_TABLE; the header then says RT_TABLE_UNSPEC.
    h.table = u8::try_from(table).unwrap_or(0);
    h.protocol = RouteProtocol::from(r.protocol.unwrap_or(if delete { 0 } else { PROTO_BOOT }));
    h.scope = RouteScope::from(r.scope.unwrap_or_else(|| default_scope(r, kind, delete)));
    h.kind = RouteType::from(kind);
    if r.onlink {
        h.flags = RouteFlags::Onlink;
    }
    let a = &mut m.attributes;
    a.push(RouteAttribute::Table(table));
    if r.dst.prefix_len() > 0 {
        a.push(RouteAttribute::Destination(route_addr(r.dst.network())));
    }
    a.extend(r.gw.map(|g| RouteAttribute::Gateway(route_addr(g))));
    a.extend(r.oif.map(RouteAttribute::Oif));
    a.extend(r.src.map(|s| RouteAttribute::PrefSource(route_addr(s))));
    a.extend(r.metric.map(RouteAttribute::Priority));
    let metrics: Vec<RouteMetric> =
        [r.mtu.map(RouteMetric::Mtu), r.advmss.map(RouteMetric::Advmss)].into_iter().flatten().collect();
    if !metrics.is_empty() {
        a.push(RouteAttribute::Metrics(metrics));
    }
    m
}

fn parse_route(m: &RouteMessage) -> Option<Route> {
    let h = &m.header;
    let unspecified = match Family::from_af(h.address_family)? {
        Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let mut dst = unspecified;
    let mut r = Route {
        table: Some(u32::from(h.table)),
        scope: Some(h.scope.into()),
        onlink: h.flags.contains(RouteFlags::Onlink),
        protocol: Some(h.protocol.into()),
        kind: Some(h.kind.into()),
        ..Route::default()
    };
    for attr in &m.attributes {
        match attr {
            RouteAttribute::Destination(a) => dst = ip_of(a)?,
            RouteAttribute::Gateway(a) => r.gw = ip_of(a),
            RouteAttribute::Oif(i) => r.oif = Some(*i),
            RouteAttribute::PrefSource(a) => r.src = ip_of(a),
            RouteAttribute::Table(t) => r.table = Some(*t),
            RouteAttribute::Priority(p) => r.metric = Some(*p),
            RouteAttribute::Metrics(ms) => {
                for metric in ms {
                    match metric {
                        RouteMetric::Mtu(v) => r.mtu = Some(*v),
                        RouteMetric::Advmss(v) => r.advmss = Some(*v),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    r.dst = IpNet::new(dst, h.destination_prefix_length).ok()?;
    Some(r)
}

impl Family {
    fn from_af(af: netlink_packet_route::AddressFamily) -> Option<Family> {
        match af {
            netlink_packet_route::AddressFamily::Inet => Some(Family::V4),
            netlink_packet_route::AddressFamily::Inet6 => Some(Family::V6),
            _ => None,
        }
    }
}

fn describe(r: &Route) -> String {
    let mut s = r.dst.trunc().to_string();
    if let Some(gw) = r.gw {
        s += &format!(" via {gw}");
    }
    if let Some(t) = r.table.filter(|t| *t != TABLE_MAIN) {
        s += &format!(" table {t}");
    }
    s
}

impl Handle {
    fn route_change(&self, r: &Route, verb: &str, msg: RouteNetlinkMessage, flags: u16) -> Result<()> {
        check_families(r)?;
        self.request(msg, flags).map(drop).map_err(|f| {
            let dev = r.oif.map(|i| format!(" dev {}", self.label(i))).unwrap_or_default();
            self.fail(format_args!("{verb} route {}{dev}", describe(r)), f)
        })
    }

    /// `ip route add ...`; fails with `EEXIST` when the same route exists.
    pub fn route_add(&self, r: &Route) -> Result<()> {
        let msg = RouteNetlinkMessage::NewRoute(build_route(r, false));
        self.route_change(r, "add", msg, NLM_F_CREATE | NLM_F_EXCL)
    }

    /// `ip route replace ...`: creates or overwrites.
    pub fn route_replace(&self, r: &Route) -> Result<()> {
        let msg = RouteNetlinkMessage::NewRoute(build_route(r, false));
        self.route_change(r, "replace", msg, NLM_F_CREATE | NLM_F_REPLACE)
    }

    /// `ip route del ...`; unset fields match any route. Absent → `is_not_found()`.
    pub fn route_del(&self, r: &Route) -> Result<()> {
        let msg = RouteNetlinkMessage::DelRoute(build_route(r, true));
        self.route_change(r, "delete", msg, 0)
    }

    /// `ip [-4|-6] route show table all|TABLE`: every route of `family` (both when `None`)
    /// in `table` (all tables when `None`), kernel-cloned cache entries excluded.
    pub fn route_list(&self, family: Option<Family>, table: Option<u32>) -> Result<Vec<Route>> {
        let mut req = RouteMessage::default();
        if let Some(f) = family {
            req.header.address_family = f.af();
        }
        let replies =
            self.dump(RouteNetlinkMessage::GetRoute(req)).map_err(|f| self.fail("list routes", f))?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewRoute(m) if !m.header.flags.contains(RouteFlags::Cloned) => {
                    parse_route(m)
                }
                _ => None,
            })
            .filter(|r| family.is_none_or(|f| Family::of(r.dst.addr()) == f))
            .filter(|r| table.is_none_or(|t| r.table == Some(t)))
            .collect())
    }
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
