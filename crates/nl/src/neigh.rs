//! Neighbours (`ip neigh replace|del|show`) and bridge/vxlan forwarding entries
//! (`bridge fdb append|del|show`).

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_APPEND, NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::mac::mac_from_slice;
use crate::{Family, Handle, Result, format_mac};

/// `NUD_PERMANENT`.
pub const NUD_PERMANENT: u16 = 0x80;
/// `NTF_SELF`: the entry belongs to the device itself (e.g. a vxlan's remote table).
pub const NTF_SELF: u8 = 0x02;
/// `NTF_MASTER`: the entry belongs to the bridge the device is a port of.
pub const NTF_MASTER: u8 = 0x04;

/// One ARP/NDP cache entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neigh {
    pub index: u32,
    pub ip: IpAddr,
    pub mac: Option<[u8; 6]>,
    /// `NUD_*` bits.
    pub state: u16,
    /// `NTF_*` bits.
    pub flags: u8,
}

/// One forwarding database entry (`bridge fdb show`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fdb {
    pub index: u32,
    pub mac: [u8; 6],
    /// Remote VTEP of a vxlan entry.
    pub dst: Option<IpAddr>,
    /// The bridge of a bridge-port entry (`NDA_MASTER`).
    pub master: Option<u32>,
    pub state: u16,
    pub flags: u8,
}

fn neigh_addr(ip: IpAddr) -> NeighbourAddress {
    match ip {
        IpAddr::V4(a) => NeighbourAddress::Inet(a),
        IpAddr::V6(a) => NeighbourAddress::Inet6(a),
    }
}

fn ip_of(a: &NeighbourAddress) -> Option<IpAddr> {
    match a {
        NeighbourAddress::Inet(a) => Some(IpAddr::V4(*a)),
        NeighbourAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        // AF_BRIDGE entries carry the VTEP address as raw bytes.
        NeighbourAddress::Other(b) => match b.len() {
            4 => <[u8; 4]>::try_from(b.as_slice()).ok().map(IpAddr::from),
            16 => <[u8; 16]>::try_from(b.as_slice()).ok().map(IpAddr::from),
            _ => None,
        },
        _ => None,
    }
}

fn raw_ip(ip: IpAddr) -> NeighbourAddress {
    match ip {
        IpAddr::V4(a) => NeighbourAddress::Other(a.octets().to_vec()),
        IpAddr::V6(a) => NeighbourAddress::Other(a.octets().to_vec()),
    }
}

/// A permanent neighbour entry for `ip` → `mac` on link `index`.
pub(crate) fn build_neigh(index: u32, ip: IpAddr, mac: Option<[u8; 6]>) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = Family::of(ip).af();
    m.header.ifindex = index;
    m.header.state = NeighbourState::Permanent;
    m.attributes.push(NeighbourAttribute::Destination(neigh_addr(ip)));
    m.attributes.extend(mac.map(|m| NeighbourAttribute::LinkLayerAddress(m.to_vec())));
    m
}

/// A permanent `AF_BRIDGE` entry owned by the device (`NTF_SELF`), as `bridge fdb append
/// MAC dev DEV dst IP self permanent` sends.
pub(crate) fn build_fdb(index: u32, mac: [u8; 6], dst: Option<IpAddr>) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Bridge;
    m.header.ifindex = index;
    m.header.state = NeighbourState::Permanent;
    m.header.flags = NeighbourFlags::Own;
    m.attributes.push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    m.attributes.extend(dst.map(|ip| NeighbourAttribute::Destination(raw_ip(ip))));
    m
}

fn parse_neigh(m: &NeighbourMessage) -> Option<Neigh> {
    let mut ip = None;
    let mut mac = None;
    for attr in &m.attributes {
        match attr {
            NeighbourAttribute::Destination(a) => ip = ip_of(a),
            NeighbourAttribute::LinkLayerAddress(l) => mac = mac_from_slice(l),
            _ => {}
        }
    }
    Some(Neigh {
        index: m.header.ifindex,
        ip: ip?,
        mac,
        state: m.header.state.into(),
        flags: m.header.flags.bits(),
    })
}

fn parse_fdb(m: &NeighbourMessage) -> Option<Fdb> {
    let mut fdb = Fdb {
        index: m.header.ifindex,
        mac: [0; 6],
        dst: None,
        master: None,
        state: m.header.state.into(),
        flags: m.header.flags.bits(),
    };
    let mut have_mac = false;
    for attr in &m.attributes {
        match attr {
            NeighbourAttribute::LinkLayerAddress(l) => {
                if let Some(mac) = mac_from_slice(l) {
                    fdb.mac = mac;
                    have_mac = true;
                }
            }
            NeighbourAttribute::Destination(a) => fdb.dst = ip_of(a),
            NeighbourAttribute::Controller(i) => fdb.master = Some(*i),
            _ => {}
        }
    }
    have_mac.then_some(fdb)
}

impl Handle {
    /// `ip neigh replace IP lladdr MAC dev DEV nud permanent`.
    pub fn neigh_replace(&self, index: u32, ip: IpAddr, mac: [u8; 6]) -> Result<()> {
        let msg = RouteNetlinkMessage::NewNeighbour(build_neigh(index, ip, Some(mac)));
        self.request(msg, NLM_F_CREATE | NLM_F_REPLACE).map(drop).map_err(|f| {
            let what = format!("replace neighbour {ip} lladdr {} on {}", format_mac(&mac), self.label(index));
            self.fail(what, f)
        })
    }

    /// `ip neigh del IP dev DEV`.
    pub fn neigh_del(&self, index: u32, ip: IpAddr) -> Result<()> {
        let msg = RouteNetlinkMessage::DelNeighbour(build_neigh(index, ip, None));
        self.request(msg, 0)
            .map(drop)
            .map_err(|f| self.fail(format_args!("delete neighbour {ip} on {}", self.label(index)), f))
    }

    /// `ip neigh show [dev DEV]` for one family or both.
    pub fn neigh_list(&self, index: Option<u32>, family: Option<Family>) -> Result<Vec<Neigh>> {
        let mut req = NeighbourMessage::default();
        if let Some(f) = family {
            req.header.family = f.af();
        }
        // Strict dump checking wants the header's ifindex zero and the filter in NDA_IFINDEX.
        req.attributes.extend(index.map(NeighbourAttribute::IfIndex));
        let replies =
            self.dump(RouteNetlinkMessage::GetNeighbour(req)).map_err(|f| self.fail("list neighbours", f))?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewNeighbour(m) => parse_neigh(m),
                _ => None,
            })
            .filter(|n| index.is_none_or(|i| n.index == i))
            .filter(|n| family.is_none_or(|f| Family::of(n.ip) == f))
            .collect())
    }

    /// `bridge fdb append MAC dev DEV dst IP self permanent`. On a vxlan device the all-zero
    /// MAC (flooding) and multicast MACs collect several remotes this way; for a unicast MAC
    /// that already has an entry the kernel keeps the first remote (use [`Handle::fdb_replace`]).
    pub fn fdb_append(&self, index: u32, mac: [u8; 6], dst: IpAddr) -> Result<()> {
        self.fdb_change(index, mac, dst, NLM_F_CREATE | NLM_F_APPEND, "append")
    }

    /// `bridge fdb replace MAC dev DEV dst IP self permanent`: creates the unicast entry or
    /// points it at a new remote.
    pub fn fdb_replace(&self, index: u32, mac: [u8; 6], dst: IpAddr) -> Result<()> {
        self.fdb_change(index, mac, dst, NLM_F_CREATE | NLM_F_REPLACE, "replace")
    }

    fn fdb_change(&self, index: u32, mac: [u8; 6], dst: IpAddr, flags: u16, verb: &str) -> Result<()> {
        let msg = RouteNetlinkMessage::NewNeighbour(build_fdb(index, mac, Some(dst)));
        self.request(msg, flags).map(drop).map_err(|f| {
            let what = format!("{verb} fdb {} dst {dst} on {}", format_mac(&mac), self.label(index));
            self.fail(what, f)
        })
    }

    /// `bridge fdb del MAC dev DEV [dst IP] self`.
    pub fn fdb_del(&self, index: u32, mac: [u8; 6], dst: Option<IpAddr>) -> Result<()> {
        let msg = RouteNetlinkMessage::DelNeighbour(build_fdb(index, mac, dst));
        self.request(msg, 0).map(drop).map_err(|f| {
            let what = format!("delete fdb {} on {}", format_mac(&mac), self.label(index));
            self.fail(what, f)
        })
    }

    /// `bridge fdb show [dev DEV]`.
    pub fn fdb_list(&self, index: Option<u32>) -> Result<Vec<Fdb>> {
        let mut req = NeighbourMessage::default();
        req.header.family = AddressFamily::Bridge;
        // With strict checking the kernel filters by bridge port index itself.
        req.header.ifindex = index.unwrap_or(0);
        let replies = self
            .dump(RouteNetlinkMessage::GetNeighbour(req))
            .map_err(|f| self.fail("list fdb entries", f))?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewNeighbour(m) => parse_fdb(m),
                _ => None,
            })
            .filter(|e| index.is_none_or(|i| e.index == i))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdb_carries_self_permanent_and_raw_dst() {
        let mac = [2, 0, 0, 0, 0, 1];
        let m = build_fdb(9, mac, Some("192.0.2.7".parse().unwrap()));
        assert_eq!(m.header.family, AddressFamily::Bridge);
        assert_eq!(m.header.flags, NeighbourFlags::Own);
        assert_eq!(u16::from(m.header.state), NUD_PERMANENT);
        let parsed = parse_fdb(&m).unwrap();
        assert_eq!(parsed.mac, mac);
        assert_eq!(parsed.dst, Some("192.0.2.7".parse().unwrap()));
        assert_eq!(parsed.flags, NTF_SELF);
    }

    #[test]
    fn neigh_round_trips() {
        let ip: IpAddr = "fd00::5".parse().unwrap();
        let m = build_neigh(4, ip, Some([2, 1, 1, 1, 1, 1]));
        assert_eq!(m.header.family, AddressFamily::Inet6);
        let n = parse_neigh(&m).unwrap();
        assert_eq!((n.index, n.ip, n.mac, n.state), (4, ip, Some([2, 1, 1, 1, 1, 1]), NUD_PERMANENT));
    }

    #[test]
    fn raw_dst_of_odd_length_is_ignored() {
        assert_eq!(ip_of(&NeighbourAddress::Other(vec![1, 2, 3])), None);
    }
}
