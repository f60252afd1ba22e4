//! The vocabulary of nftables data: table families, the data types of set keys and map
//! values (with the numbers nft stores in the kernel, so `nft list` prints what twill wrote),
//! single values with their byte and text forms, and verdicts.

use std::fmt;
use std::net::IpAddr;

/// A table family (`NFPROTO_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Inet,
    Ip,
    Ip6,
    Arp,
    Bridge,
    Netdev,
}

impl Family {
    pub fn nfproto(self) -> u8 {
        match self {
            Family::Inet => 1,
            Family::Ip => 2,
            Family::Arp => 3,
            Family::Netdev => 5,
            Family::Bridge => 7,
            Family::Ip6 => 10,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Arp => "arp",
            Family::Bridge => "bridge",
            Family::Netdev => "netdev",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The data type of a set key, a map value or a matched field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataType {
    Verdict,
    NfProto,
    Ipv4Addr,
    Ipv6Addr,
    EtherAddr,
    EtherType,
    InetProto,
    InetService,
    Mark,
    CtState,
    CtStatus,
    Icmpv6Type,
    FibAddrType,
    Ifname,
}

impl DataType {
    /// nft's number for the type (`include/datatype.h`), stored as the set's key type so
    /// `nft list` knows how to print the elements.
    pub fn id(self) -> u32 {
        match self {
            DataType::Verdict => 1,
            DataType::NfProto => 2,
            DataType::Ipv4Addr => 7,
            DataType::Ipv6Addr => 8,
            DataType::EtherAddr => 9,
            DataType::EtherType => 10,
            DataType::InetProto => 12,
            DataType::InetService => 13,
            DataType::Mark => 19,
            DataType::CtState => 26,
            DataType::CtStatus => 28,
            DataType::Icmpv6Type => 29,
            DataType::FibAddrType => 38,
            DataType::Ifname => 41,
        }
    }

    /// The type nft numbers `id`.
    pub fn from_id(id: u32) -> Option<DataType> {
        use DataType::*;
        [
            Verdict,
            NfProto,
            Ipv4Addr,
            Ipv6Addr,
            EtherAddr,
            EtherType,
            InetProto,
            InetService,
            Mark,
            CtState,
            CtStatus,
            Icmpv6Type,
            FibAddrType,
            Ifname,
        ]
        .into_iter()
        .find(|t| t.id() == id)
    }

    /// Size in bytes of one value.
    pub fn size(self) -> usize {
        match self {
            DataType::Verdict => 0,
            DataType::NfProto | DataType::InetProto | DataType::Icmpv6Type => 1,
            DataType::EtherType | DataType::InetService => 2,
            DataType::Ipv4Addr
            | DataType::Mark
            | DataType::CtState
            | DataType::CtStatus
            | DataType::FibAddrType => 4,
            DataType::EtherAddr => 6,
            DataType::Ipv6Addr | DataType::Ifname => 16,
        }
    }

    /// nft's byte order of the type (1 host, 2 big endian), kept in a set's user data.
    pub fn byteorder(self) -> u32 {
        match self {
            DataType::Ipv4Addr
            | DataType::Ipv6Addr
            | DataType::EtherAddr
            | DataType::EtherType
            | DataType::InetService
            | DataType::Icmpv6Type => 2,
            _ => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DataType::Verdict => "verdict",
            DataType::NfProto => "nf_proto",
            DataType::Ipv4Addr => "ipv4_addr",
            DataType::Ipv6Addr => "ipv6_addr",
            DataType::EtherAddr => "ether_addr",
            DataType::EtherType => "ether_type",
            DataType::InetProto => "inet_proto",
            DataType::InetService => "inet_service",
            DataType::Mark => "mark",
            DataType::CtState => "ct_state",
            DataType::CtStatus => "ct_status",
            DataType::Icmpv6Type => "icmpv6_type",
            DataType::FibAddrType => "fib_addrtype",
            DataType::Ifname => "ifname",
        }
    }
}

/// One value of a [`DataType`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    Addr(IpAddr),
    Ether([u8; 6]),
    /// An IP protocol number (`inet_proto`): 6 tcp, 17 udp, 132 sctp.
    Proto(u8),
    /// A port (`inet_service`).
    Port(u16),
    Ifname(String),
    Mark(u32),
    NfProto(u8),
    EtherType(u16),
    Icmpv6Type(u8),
    FibAddrType(u32),
}

impl Value {
    pub fn data_type(&self) -> DataType {
        match self {
            Value::Addr(IpAddr::V4(_)) => DataType::Ipv4Addr,
            Value::Addr(IpAddr::V6(_)) => DataType::Ipv6Addr,
            Value::Ether(_) => DataType::EtherAddr,
            Value::Proto(_) => DataType::InetProto,
            Value::Port(_) => DataType::InetService,
            Value::Ifname(_) => DataType::Ifname,
            Value::Mark(_) => DataType::Mark,
            Value::NfProto(_) => DataType::NfProto,
            Value::EtherType(_) => DataType::EtherType,
            Value::Icmpv6Type(_) => DataType::Icmpv6Type,
            Value::FibAddrType(_) => DataType::FibAddrType,
        }
    }

    /// The bytes the kernel compares: network order for addresses, ports and ether types,
    /// host order for marks and the fib address type, NUL-padded for interface names.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Value::Addr(IpAddr::V4(a)) => a.octets().to_vec(),
            Value::Addr(IpAddr::V6(a)) => a.octets().to_vec(),
            Value::Ether(m) => m.to_vec(),
            Value::Proto(p) | Value::NfProto(p) | Value::Icmpv6Type(p) => vec![*p],
            Value::Port(p) | Value::EtherType(p) => p.to_be_bytes().to_vec(),
            Value::Ifname(name) => {
                let mut b = name.as_bytes().to_vec();
                b.resize(DataType::Ifname.size(), 0);
                b
            }
            Value::Mark(m) | Value::FibAddrType(m) => m.to_ne_bytes().to_vec(),
        }
    }

    /// The value read back from `bytes` of type `t`; `None` for a verdict or a short slice.
    pub fn from_bytes(t: DataType, b: &[u8]) -> Option<Value> {
        let b = b.get(..t.size())?;
        let u16_be = || u16::from_be_bytes([b[0], b[1]]);
        let u32_ne = || u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        Some(match t {
            DataType::Verdict | DataType::CtState | DataType::CtStatus => return None,
            DataType::Ipv4Addr => Value::Addr(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
            DataType::Ipv6Addr => Value::Addr(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
            DataType::EtherAddr => Value::Ether(b.try_into().ok()?),
            DataType::InetProto => Value::Proto(b[0]),
            DataType::NfProto => Value::NfProto(b[0]),
            DataType::Icmpv6Type => Value::Icmpv6Type(b[0]),
            DataType::InetService => Value::Port(u16_be()),
            DataType::EtherType => Value::EtherType(u16_be()),
            DataType::Mark => Value::Mark(u32_ne()),
            DataType::FibAddrType => Value::FibAddrType(u32_ne()),
            DataType::Ifname => {
                let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
                Value::Ifname(String::from_utf8_lossy(&b[..end]).into_owned())
            }
        })
    }
}

impl fmt::Display for Value {
    /// As nft prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Addr(a) => write!(f, "{a}"),
            Value::Ether(m) => {
                let hex: Vec<String> = m.iter().map(|b| format!("{b:02x}")).collect();
                f.write_str(&hex.join(":"))
            }
            Value::Proto(p) => match proto_name(*p) {
                Some(name) => f.write_str(name),
                None => write!(f, "{p}"),
            },
            Value::Port(p) => write!(f, "{p}"),
            Value::Ifname(n) => write!(f, "\"{n}\""),
            Value::Mark(m) => write!(f, "0x{m:08x}"),
            Value::NfProto(2) => f.write_str("ipv4"),
            Value::NfProto(10) => f.write_str("ipv6"),
            Value::NfProto(p) => write!(f, "{p}"),
            Value::EtherType(0x0800) => f.write_str("ip"),
            Value::EtherType(0x86dd) => f.write_str("ip6"),
            Value::EtherType(0x0806) => f.write_str("arp"),
            Value::EtherType(t) => write!(f, "0x{t:04x}"),
            Value::Icmpv6Type(t) => match icmpv6_name(*t) {
                Some(name) => f.write_str(name),
                None => write!(f, "{t}"),
            },
            Value::FibAddrType(2) => f.write_str("local"),
            Value::FibAddrType(t) => write!(f, "{t}"),
        }
    }
}

/// The names nft prints for the IP protocols twill uses.
pub fn proto_name(p: u8) -> Option<&'static str> {
    match p {
        1 => Some("icmp"),
        6 => Some("tcp"),
        17 => Some("udp"),
        58 => Some("ipv6-icmp"),
        132 => Some("sctp"),
        _ => None,
    }
}

fn icmpv6_name(t: u8) -> Option<&'static str> {
    match t {
        133 => Some("nd-router-solicit"),
        134 => Some("nd-router-advert"),
        135 => Some("nd-neighbor-solicit"),
        136 => Some("nd-neighbor-advert"),
        137 => Some("nd-redirect"),
        _ => None,
    }
}

/// Where a rule or map element sends a packet.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    Accept,
    Drop,
    Return,
    Continue,
    Jump(String),
    Goto(String),
}

impl Verdict {
    /// The kernel's verdict code (`NF_DROP`, `NF_ACCEPT`, `NFT_*`).
    pub fn code(&self) -> i32 {
        match self {
            Verdict::Drop => 0,
            Verdict::Accept => 1,
            Verdict::Continue => -1,
            Verdict::Jump(_) => -3,
            Verdict::Goto(_) => -4,
            Verdict::Return => -5,
        }
    }

    pub fn chain(&self) -> Option<&str> {
        match self {
            Verdict::Jump(c) | Verdict::Goto(c) => Some(c),
            _ => None,
        }
    }

    /// The verdict of `code` (and `chain` for jumps); `None` for codes twill never writes.
    pub fn from_code(code: i32, chain: Option<String>) -> Option<Verdict> {
        Some(match (code, chain) {
            (0, _) => Verdict::Drop,
            (1, _) => Verdict::Accept,
            (-1, _) => Verdict::Continue,
            (-5, _) => Verdict::Return,
            (-3, Some(c)) => Verdict::Jump(c),
            (-4, Some(c)) => Verdict::Goto(c),
            _ => return None,
        })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Accept => f.write_str("accept"),
            Verdict::Drop => f.write_str("drop"),
            Verdict::Return => f.write_str("return"),
            Verdict::Continue => f.write_str("continue"),
            Verdict::Jump(c) => write!(f, "jump {c}"),
            Verdict::Goto(c) => write!(f, "goto {c}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_bytes() {
        let values = [
            Value::Addr("10.1.2.3".parse().unwrap()),
            Value::Addr("fd00::5".parse().unwrap()),
            Value::Ether([2, 0, 0, 0, 0, 1]),
            Value::Proto(6),
            Value::Port(8080),
            Value::Ifname("cni0".into()),
            Value::Mark(0x2000),
        ];
        for v in values {
            let t = v.data_type();
            assert_eq!(v.bytes().len(), t.size(), "{v}");
            assert_eq!(Value::from_bytes(t, &v.bytes()), Some(v.clone()));
        }
        assert_eq!(Value::Port(8080).bytes(), [0x1f, 0x90]);
    }

    #[test]
    fn values_print_as_nft_does() {
        assert_eq!(Value::Proto(132).to_string(), "sctp");
        assert_eq!(Value::Proto(200).to_string(), "200");
        assert_eq!(Value::Ether([2, 0xab, 0, 0, 0, 1]).to_string(), "02:ab:00:00:00:01");
        assert_eq!(Value::Ifname("cni0".into()).to_string(), "\"cni0\"");
        assert_eq!(Value::Icmpv6Type(135).to_string(), "nd-neighbor-solicit");
        assert_eq!(Verdict::Jump("c".into()).to_string(), "jump c");
        assert_eq!(Verdict::from_code(-3, Some("c".into())), Some(Verdict::Jump("c".into())));
    }
}
