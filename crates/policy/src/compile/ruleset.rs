//! A compiled ruleset is an nftables table as data ([`fw::nft::Table`]): its nft text is what
//! golden tests and `explain` show, its netlink form what twilld applies. This module names
//! the table and turns the compiler's pieces (address ranges, comments) into its terms.

use fw::nft::{DataType, Family, KeyPart, TableId, Value, clean_comment};

use super::intervals::addr;
use crate::model::{Family as IpFamily, Protocol};

/// The table family: one table serves IPv4 and IPv6.
pub const FAMILY: Family = Family::Inet;
/// The table every node's policy lives in.
pub const TABLE: &str = "twill_policy";

/// The contents of `table inet twill_policy`.
pub type Ruleset = fw::nft::Table;

/// Where the policy table is.
pub fn table_id() -> TableId {
    TableId::new(FAMILY, TABLE)
}

/// An address, or an inclusive range of addresses (printed as a prefix when aligned).
pub fn addr_part(family: IpFamily, lo: u128, hi: u128) -> KeyPart {
    match lo == hi {
        true => KeyPart::Exact(Value::Addr(addr(family, lo))),
        false => KeyPart::Range(Value::Addr(addr(family, lo)), Value::Addr(addr(family, hi))),
    }
}

pub fn port_part(first: u16, last: u16) -> KeyPart {
    match first == last {
        true => KeyPart::Exact(Value::Port(first)),
        false => KeyPart::Range(Value::Port(first), Value::Port(last)),
    }
}

pub fn proto_part(proto: Protocol) -> KeyPart {
    let number = match proto {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Sctp => 132,
    };
    KeyPart::Exact(Value::Proto(number))
}

pub fn addr_type(family: IpFamily) -> DataType {
    match family {
        IpFamily::V4 => DataType::Ipv4Addr,
        IpFamily::V6 => DataType::Ipv6Addr,
    }
}

/// A comment nft and the kernel accept. Kubernetes names never hold quotes or backslashes;
/// dropping them keeps any other text from breaking the ruleset.
pub fn comment(s: &str) -> String {
    clean_comment(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fw::nft::text::key_part_text;

    #[test]
    fn parts_print_as_nft_does() {
        let v4 = |s: &str| u128::from(u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()));
        assert_eq!(key_part_text(&addr_part(IpFamily::V4, v4("10.0.0.0"), v4("10.0.0.255"))), "10.0.0.0/24");
        assert_eq!(key_part_text(&addr_part(IpFamily::V4, v4("10.0.0.1"), v4("10.0.0.1"))), "10.0.0.1");
        assert_eq!(key_part_text(&port_part(80, 90)), "80-90");
        assert_eq!(key_part_text(&proto_part(Protocol::Sctp)), "sctp");
        assert_eq!(comment(&"é".repeat(100)).len(), 126);
    }
}
