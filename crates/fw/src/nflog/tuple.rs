//! The 5-tuple of a logged packet, from its network header on: IPv4 or IPv6 (skipping the
//! usual extension headers), then the ports of TCP, UDP, UDP-Lite, SCTP and DCCP (all keep
//! source and destination port in their first four bytes), or ICMP type and code.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Source, destination, protocol number and ports (`None` for protocols without ports, and
/// for fragments after the first, which carry no transport header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
}

/// Why a payload has no tuple.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TupleError {
    #[error("packet of {0} bytes is too short for its IP header")]
    Short(usize),
    #[error("not an IP packet (version nibble {0})")]
    NotIp(u8),
}

const PORTED: [u8; 5] = [6, 17, 33, 132, 136];
/// Hop-by-hop, routing, destination options: `next header`, then length in 8-byte units
/// beyond the first 8.
const IPV6_EXT: [u8; 3] = [0, 43, 60];
const IPV6_FRAGMENT: u8 = 44;

impl Tuple {
    /// Parses `payload`, which starts at the IP header.
    pub fn parse(payload: &[u8]) -> Result<Tuple, TupleError> {
        let version = payload.first().map(|b| b >> 4).ok_or(TupleError::Short(0))?;
        match version {
            4 => Tuple::v4(payload),
            6 => Tuple::v6(payload),
            v => Err(TupleError::NotIp(v)),
        }
    }

    fn v4(p: &[u8]) -> Result<Tuple, TupleError> {
        let ihl = usize::from(p[0] & 0x0f) * 4;
        if p.len() < 20 || ihl < 20 {
            return Err(TupleError::Short(p.len()));
        }
        let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]).into();
        let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]).into();
        let fragment_offset = u16::from_be_bytes([p[6], p[7]]) & 0x1fff;
        let l4 = if fragment_offset == 0 { p.get(ihl..) } else { None };
        Ok(Tuple::with_ports(src, dst, p[9], l4))
    }

    fn v6(p: &[u8]) -> Result<Tuple, TupleError> {
        if p.len() < 40 {
            return Err(TupleError::Short(p.len()));
        }
        let addr = |at: usize| {
            let mut b = [0u8; 16];
            b.copy_from_slice(&p[at..at + 16]);
            IpAddr::from(Ipv6Addr::from(b))
        };
        let (mut next, mut at) = (p[6], 40usize);
        let mut first_fragment = true;
        loop {
            match next {
                n if IPV6_EXT.contains(&n) => {
                    let Some(h) = p.get(at..at + 2) else { break };
                    next = h[0];
                    at += (usize::from(h[1]) + 1) * 8;
                }
                IPV6_FRAGMENT => {
                    let Some(h) = p.get(at..at + 4) else { break };
                    first_fragment = u16::from_be_bytes([h[2], h[3]]) >> 3 == 0;
                    next = h[0];
                    at += 8;
                }
                _ => break,
            }
        }
        let l4 = if first_fragment { p.get(at..) } else { None };
        Ok(Tuple::with_ports(addr(8), addr(24), next, l4))
    }

    fn with_ports(src: IpAddr, dst: IpAddr, proto: u8, l4: Option<&[u8]>) -> Tuple {
        // Both ports or neither: a header cut short has none.
        let pair = |h: &[u8], wide: bool| match wide {
            true => Some((u16::from_be_bytes([h[0], h[1]]), u16::from_be_bytes([h[2], h[3]]))),
            false => Some((u16::from(h[0]), u16::from(h[1]))),
        };
        let ports = match (proto, l4) {
            (p, Some(h)) if PORTED.contains(&p) && h.len() >= 4 => pair(h, true),
            // ICMP and ICMPv6: type and code stand where the ports would be.
            (1 | 58, Some(h)) if h.len() >= 2 => pair(h, false),
            _ => None,
        };
        let (sport, dport) = (ports.map(|p| p.0), ports.map(|p| p.1));
        Tuple { src, dst, proto, sport, dport }
    }

    /// `tcp`, `udp`, ... or the number.
    pub fn proto_name(&self) -> String {
        match self.proto {
            1 => "icmp".into(),
            6 => "tcp".into(),
            17 => "udp".into(),
            58 => "icmpv6".into(),
            132 => "sctp".into(),
            n => n.to_string(),
        }
    }
}
