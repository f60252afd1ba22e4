//! Addresses (`ip address add|del|show`).

use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};

use crate::{Family, Handle, Result};

/// One address of a link, as `ip address show` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addr {
    pub index: u32,
    /// The address with its prefix length; host bits kept (`10.1.2.3/24`).
    pub net: IpNet,
    /// `RT_SCOPE_*`: 0 global, 253 link, 254 host.
    pub scope: u8,
    /// `IFA_F_*` (`IFA_FLAGS` when present, else the header's 8 bits).
    pub flags: u32,
}

impl Addr {
    /// `IFA_F_TENTATIVE`: IPv6 duplicate address detection has not finished.
    pub fn is_tentative(&self) -> bool {
        self.flags & AddressFlags::Tentative.bits() != 0
    }

    /// `IFA_F_DADFAILED`: another host on the link holds the address; it will never be used.
    pub fn is_dad_failed(&self) -> bool {
        self.flags & AddressFlags::Dadfailed.bits() != 0
    }

    fn from_msg(m: &AddressMessage) -> Option<Addr> {
        let mut local = None;
        let mut address = None;
        let mut flags = u32::from(m.header.flags.bits());
        for attr in &m.attributes {
            match attr {
                AddressAttribute::Local(ip) => local = Some(*ip),
                AddressAttribute::Address(ip) => address = Some(*ip),
                AddressAttribute::Flags(f) => flags = f.bits(),
                _ => {}
            }
        }
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
        // point-to-point links and the only one IPv6 sends.
        let ip = local.or(address)?;
        Some(Addr {
            index: m.header.index,
            net: IpNet::new(ip, m.header.prefix_len).ok()?,
            scope: m.header.scope.into(),
            flags,
        })
    }
}

/// The `RTM_NEWADDR`/`RTM_DELADDR` body for `net` on link `index`. IPv4 gets a broadcast
/// address like the reference plugins set (none for /31 and /32).
pub(crate) fn build_addr(index: u32, net: IpNet, nodad: bool) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = Family::of(net.addr()).af();
    m.header.prefix_len = net.prefix_len();
    m.header.index = index;
    m.header.scope = AddressScope::Universe;
    m.attributes.push(AddressAttribute::Local(net.addr()));
    m.attributes.push(AddressAttribute::Address(net.addr()));
    if let IpNet::V4(v4) = net
        && let Some(brd) = broadcast(v4)
    {
        m.attributes.push(AddressAttribute::Broadcast(brd));
    }
    if nodad {
        m.header.flags = AddressHeaderFlags::Nodad;
        m.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    m
}

fn broadcast(net: Ipv4Net) -> Option<Ipv4Addr> {
    (net.prefix_len() < 31).then(|| net.broadcast())
}

impl Handle {
    /// `ip address add NET dev DEV [nodad]`.
    pub fn addr_add(&self, index: u32, net: IpNet, nodad: bool) -> Result<()> {
        let msg = RouteNetlinkMessage::NewAddress(build_addr(index, net, nodad));
        self.request(msg, NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
            .map_err(|f| self.fail(format_args!("add address {net} to {}", self.label(index)), f))
    }

    /// `ip address del NET dev DEV`.
    pub fn addr_del(&self, index: u32, net: IpNet) -> Result<()> {
        let msg = RouteNetlinkMessage::DelAddress(build_addr(index, net, false));
        self.request(msg, 0)
            .map(drop)
            .map_err(|f| self.fail(format_args!("delete address {net} from {}", self.label(index)), f))
    }

    /// `ip address show [dev DEV]`, both families.
    pub fn addr_list(&self, index: Option<u32>) -> Result<Vec<Addr>> {
        let mut req = AddressMessage::default();
        // With strict checking the kernel filters the dump by this index itself.
        req.header.index = index.unwrap_or(0);
        let replies = self.dump(RouteNetlinkMessage::GetAddress(req)).map_err(|f| match index {
            Some(i) => self.fail(format_args!("list addresses of {}", self.label(i)), f),
            None => self.fail("list addresses", f),
        })?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewAddress(m) => Addr::from_msg(m),
                _ => None,
            })
            .filter(|a| index.is_none_or(|i| a.index == i))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn v4_gets_local_address_and_broadcast() {
        let m = build_addr(7, "10.1.2.3/24".parse().unwrap(), false);
        assert_eq!(m.header.prefix_len, 24);
        assert_eq!(m.header.index, 7);
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        assert!(m.attributes.contains(&AddressAttribute::Local(ip)));
        assert!(m.attributes.contains(&AddressAttribute::Address(ip)));
        assert!(m.attributes.contains(&AddressAttribute::Broadcast("10.1.2.255".parse().unwrap())));
        assert!(m.header.flags.is_empty());
    }

    #[test]
    fn no_broadcast_for_point_to_point_prefixes() {
        for net in ["10.0.0.1/31", "10.0.0.1/32", "fd00::1/64"] {
            let m = build_addr(1, net.parse().unwrap(), false);
            assert!(!m.attributes.iter().any(|a| matches!(a, AddressAttribute::Broadcast(_))), "{net}");
        }
    }

    #[test]
    fn nodad_sets_both_flag_fields() {
        let m = build_addr(1, "fd00::1/64".parse().unwrap(), true);
        assert_eq!(m.header.flags, AddressHeaderFlags::Nodad);
        assert!(m.attributes.contains(&AddressAttribute::Flags(AddressFlags::Nodad)));
    }

    #[test]
    fn parse_prefers_local_and_keeps_host_bits() {
        let mut m = build_addr(3, "10.1.2.3/24".parse().unwrap(), false);
        m.attributes.retain(|a| !matches!(a, AddressAttribute::Address(_)));
        m.attributes.push(AddressAttribute::Address("10.9.9.9".parse().unwrap()));
        let a = Addr::from_msg(&m).unwrap();
        assert_eq!(a.net, "10.1.2.3/24".parse::<IpNet>().unwrap());
        assert_eq!(a.index, 3);
    }
}
