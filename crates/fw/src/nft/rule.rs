//! Rules as data: matches on packet fields and statements, in the words nft uses. A rule
//! prints as nft text ([`std::fmt::Display`]) and compiles to kernel expressions
//! ([`super::wire::expr`]); protocol dependencies (`meta nfproto ipv4` before `ip saddr` in an
//! inet table) are implied, as in nft.

use std::fmt;

use ipnet::IpNet;

use super::table::KeyPart;
use super::types::{DataType, Value, Verdict};

/// A packet field or piece of packet metadata a rule can match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    NfProto,
    L4Proto,
    /// `meta protocol`: the ether type of the packet.
    Protocol,
    Iifname,
    Oifname,
    Mark,
    IpSaddr,
    IpDaddr,
    Ip6Saddr,
    Ip6Daddr,
    ThSport,
    ThDport,
    EtherSaddr,
    EtherDaddr,
    EtherType,
    /// `arp saddr ether`: the sender hardware address.
    ArpSha,
    /// `arp saddr ip`: the sender protocol address.
    ArpSpa,
    Icmpv6Type,
    /// The target address of an IPv6 neighbour solicitation or advertisement: bytes 8–23 of
    /// the ICMPv6 message. nft 1.0.6 has no name for it and prints the raw payload
    /// `@th,64,128`, which it cannot read back in a lookup of an `ipv6_addr` set: the text of
    /// a rule using it is for people only.
    NdTarget,
    CtState,
    CtStatus,
    /// `fib daddr type`: the route type of the destination (local, unicast, ...).
    FibDaddrType,
}

/// The network layer a field needs the packet to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L3 {
    Ipv4,
    Ipv6,
    Arp,
}

/// Where a field's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `NFT_META_*` key.
    Meta(u32),
    /// Payload base (`NFT_PAYLOAD_*_HEADER`), offset and length in bytes.
    Payload(u32, u32, u32),
    /// `NFT_CT_*` key.
    Ct(u32),
    /// fib lookup of the destination address, result: address type.
    FibDaddrType,
}

/// How to load a field, what it holds, and what it depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    pub text: &'static str,
    pub data_type: DataType,
    pub source: Source,
    pub l3: Option<L3>,
    /// The transport protocol the field needs (58 for ICMPv6).
    pub l4: Option<u8>,
}

const LL: u32 = 0;
const NH: u32 = 1;
const TH: u32 = 2;

impl Field {
    pub fn spec(self) -> FieldSpec {
        use DataType as T;
        let (text, data_type, source, l3, l4) = match self {
            Field::NfProto => ("meta nfproto", T::NfProto, Source::Meta(15), None, None),
            Field::L4Proto => ("meta l4proto", T::InetProto, Source::Meta(16), None, None),
            Field::Protocol => ("meta protocol", T::EtherType, Source::Meta(1), None, None),
            Field::Iifname => ("iifname", T::Ifname, Source::Meta(6), None, None),
            Field::Oifname => ("oifname", T::Ifname, Source::Meta(7), None, None),
            Field::Mark => ("meta mark", T::Mark, Source::Meta(3), None, None),
            Field::IpSaddr => ("ip saddr", T::Ipv4Addr, Source::Payload(NH, 12, 4), Some(L3::Ipv4), None),
            Field::IpDaddr => ("ip daddr", T::Ipv4Addr, Source::Payload(NH, 16, 4), Some(L3::Ipv4), None),
            Field::Ip6Saddr => ("ip6 saddr", T::Ipv6Addr, Source::Payload(NH, 8, 16), Some(L3::Ipv6), None),
            Field::Ip6Daddr => ("ip6 daddr", T::Ipv6Addr, Source::Payload(NH, 24, 16), Some(L3::Ipv6), None),
            Field::ThSport => ("th sport", T::InetService, Source::Payload(TH, 0, 2), None, None),
            Field::ThDport => ("th dport", T::InetService, Source::Payload(TH, 2, 2), None, None),
            Field::EtherSaddr => ("ether saddr", T::EtherAddr, Source::Payload(LL, 6, 6), None, None),
            Field::EtherDaddr => ("ether daddr", T::EtherAddr, Source::Payload(LL, 0, 6), None, None),
            Field::EtherType => ("ether type", T::EtherType, Source::Payload(LL, 12, 2), None, None),
            Field::ArpSha => {
                ("arp saddr ether", T::EtherAddr, Source::Payload(NH, 8, 6), Some(L3::Arp), None)
            }
            Field::ArpSpa => ("arp saddr ip", T::Ipv4Addr, Source::Payload(NH, 14, 4), Some(L3::Arp), None),
            Field::Icmpv6Type => {
                ("icmpv6 type", T::Icmpv6Type, Source::Payload(TH, 0, 1), Some(L3::Ipv6), Some(58))
            }
            Field::NdTarget => {
                ("@th,64,128", T::Ipv6Addr, Source::Payload(TH, 8, 16), Some(L3::Ipv6), Some(58))
            }
            Field::CtState => ("ct state", T::CtState, Source::Ct(0), None, None),
            Field::CtStatus => ("ct status", T::CtStatus, Source::Ct(2), None, None),
            Field::FibDaddrType => ("fib daddr type", T::FibAddrType, Source::FibDaddrType, None, None),
        };
        FieldSpec { text, data_type, source, l3, l4 }
    }
}

/// What a field is compared with.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    Value(Value),
    Prefix(IpNet),
    Range(Value, Value),
}

/// One condition of a rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Match {
    /// `FIELD OPERAND`, or `FIELD != OPERAND` when `negate`.
    Is { field: Field, negate: bool, operand: Operand },
    /// Any of the flag bits is set: `ct state established,related`.
    AnyOf { field: Field, bits: u32 },
    /// The concatenation of `fields` is (or, negated, is not) in the named set.
    In { fields: Vec<Field>, negate: bool, set: String },
    /// The field is (or, negated, is not) one of `values`: an anonymous set, with intervals
    /// when a value is a range.
    OneOf { field: Field, negate: bool, values: Vec<KeyPart> },
}

impl Match {
    pub fn eq(field: Field, value: Value) -> Match {
        Match::Is { field, negate: false, operand: Operand::Value(value) }
    }

    pub fn ne(field: Field, value: Value) -> Match {
        Match::Is { field, negate: true, operand: Operand::Value(value) }
    }

    pub fn in_set(fields: &[Field], set: impl Into<String>) -> Match {
        Match::In { fields: fields.to_vec(), negate: false, set: set.into() }
    }

    pub fn not_in_set(fields: &[Field], set: impl Into<String>) -> Match {
        Match::In { fields: fields.to_vec(), negate: true, set: set.into() }
    }
}

/// What a rule does when its matches hold.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Stmt {
    Counter,
    Verdict(Verdict),
    Masquerade,
    /// `dnat ip to KEY map @MAP` (`ip6` when `v6`): the map's value is `address . port`.
    DnatMap {
        v6: bool,
        key: Vec<Field>,
        map: String,
    },
    /// `KEY vmap @MAP`.
    Vmap {
        key: Vec<Field>,
        map: String,
    },
    /// `log prefix "PREFIX" group GROUP`: a copy of the packet to the nfnetlink_log group
    /// (whoever bound it; nobody costs a lookup). The kernel takes at most
    /// [`LOG_PREFIX_MAX`] bytes of prefix.
    Log {
        group: u16,
        prefix: String,
    },
}

/// The longest log prefix the kernel accepts (NF_LOG_PREFIXLEN less its NUL).
pub const LOG_PREFIX_MAX: usize = 127;

/// A rule: matches, then statements.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    pub matches: Vec<Match>,
    pub stmts: Vec<Stmt>,
    pub comment: Option<String>,
}

impl Rule {
    pub fn new(matches: Vec<Match>, stmts: Vec<Stmt>) -> Rule {
        Rule { matches, stmts, comment: None }
    }

    /// Matches followed by one verdict.
    pub fn verdict(matches: Vec<Match>, verdict: Verdict) -> Rule {
        Rule::new(matches, vec![Stmt::Verdict(verdict)])
    }

    pub fn with_comment(mut self, comment: impl Into<String>) -> Rule {
        self.comment = Some(comment.into());
        self
    }
}

fn concat(fields: &[Field]) -> String {
    fields.iter().map(|f| f.spec().text).collect::<Vec<_>>().join(" . ")
}

/// The names nft prints for flag bits of `ct state` and `ct status`.
pub fn flag_names(field: Field, bits: u32) -> Vec<String> {
    let names: &[(u32, &str)] = match field {
        Field::CtState => {
            &[(1, "invalid"), (2, "established"), (4, "related"), (8, "new"), (64, "untracked")]
        }
        Field::CtStatus => &[
            (1, "expected"),
            (2, "seen-reply"),
            (4, "assured"),
            (8, "confirmed"),
            (16, "snat"),
            (32, "dnat"),
            (512, "dying"),
        ],
        _ => &[],
    };
    let mut out: Vec<String> =
        names.iter().filter(|(b, _)| bits & b != 0).map(|(_, n)| n.to_string()).collect();
    let known: u32 = names.iter().map(|(b, _)| b).sum();
    if bits & !known != 0 {
        out.push(format!("0x{:x}", bits & !known));
    }
    out
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Value(v) => write!(f, "{v}"),
            Operand::Prefix(net) => write!(f, "{}/{}", net.network(), net.prefix_len()),
            Operand::Range(lo, hi) => write!(f, "{lo}-{hi}"),
        }
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Match::Is { field, negate, operand } => {
                write!(f, "{} {}{operand}", field.spec().text, if *negate { "!= " } else { "" })
            }
            Match::AnyOf { field, bits } => {
                write!(f, "{} {}", field.spec().text, flag_names(*field, *bits).join(","))
            }
            Match::In { fields, negate, set } => {
                write!(f, "{} {}@{set}", concat(fields), if *negate { "!= " } else { "" })
            }
            Match::OneOf { field, negate, values } => {
                let values: Vec<String> = values.iter().map(super::text::key_part_text).collect();
                write!(
                    f,
                    "{} {}{{ {} }}",
                    field.spec().text,
                    if *negate { "!= " } else { "" },
                    values.join(", ")
                )
            }
        }
    }
}

impl fmt::Display for Stmt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stmt::Counter => f.write_str("counter"),
            Stmt::Verdict(v) => write!(f, "{v}"),
            Stmt::Masquerade => f.write_str("masquerade"),
            Stmt::DnatMap { v6, key, map } => {
                let ip = if *v6 { "ip6" } else { "ip" };
                write!(f, "dnat {ip} to {} map @{map}", concat(key))
            }
            Stmt::Vmap { key, map } => write!(f, "{} vmap @{map}", concat(key)),
            Stmt::Log { group, prefix } => write!(f, "log prefix \"{prefix}\" group {group}"),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> =
            self.matches.iter().map(Match::to_string).chain(self.stmts.iter().map(Stmt::to_string)).collect();
        f.write_str(&parts.join(" "))?;
        if let Some(c) = &self.comment {
            write!(f, " comment \"{c}\"")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_print_as_nft_text() {
        let r = Rule::new(
            vec![
                Match::AnyOf { field: Field::CtStatus, bits: 32 },
                Match::in_set(&[Field::IpSaddr, Field::IpDaddr], "masq4"),
            ],
            vec![Stmt::Masquerade],
        );
        assert_eq!(r.to_string(), "ct status dnat ip saddr . ip daddr @masq4 masquerade");
        let r = Rule::verdict(
            vec![
                Match::in_set(&[Field::Iifname], "guarded"),
                Match::not_in_set(&[Field::Iifname, Field::EtherSaddr], "allowed"),
            ],
            Verdict::Drop,
        );
        assert_eq!(r.to_string(), "iifname @guarded iifname . ether saddr != @allowed drop");
        let r = Rule::new(vec![], vec![Stmt::Counter, Stmt::Verdict(Verdict::Drop)]).with_comment("no rule");
        assert_eq!(r.to_string(), "counter drop comment \"no rule\"");
        let dnat =
            Stmt::DnatMap { v6: false, key: vec![Field::L4Proto, Field::ThDport], map: "port4".into() };
        assert_eq!(dnat.to_string(), "dnat ip to meta l4proto . th dport map @port4");
        let log = Stmt::Log { group: 7, prefix: "tw:d:1".into() };
        assert_eq!(log.to_string(), "log prefix \"tw:d:1\" group 7");
    }

    #[test]
    fn operands_and_flags() {
        let m = Match::Is {
            field: Field::IpDaddr,
            negate: true,
            operand: Operand::Prefix("224.0.0.0/4".parse().unwrap()),
        };
        assert_eq!(m.to_string(), "ip daddr != 224.0.0.0/4");
        assert_eq!(
            Match::AnyOf { field: Field::CtState, bits: 6 }.to_string(),
            "ct state established,related"
        );
        let nd = Match::OneOf {
            field: Field::Icmpv6Type,
            negate: false,
            values: vec![KeyPart::Exact(Value::Icmpv6Type(135)), KeyPart::Exact(Value::Icmpv6Type(136))],
        };
        assert_eq!(nd.to_string(), "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert }");
        let nets = ["10.244.0.0/16", "224.0.0.0/4"].map(|n| KeyPart::net(n.parse().unwrap())).to_vec();
        let not = Match::OneOf { field: Field::IpDaddr, negate: true, values: nets };
        assert_eq!(not.to_string(), "ip daddr != { 10.244.0.0/16, 224.0.0.0/4 }");
        assert_eq!(Match::eq(Field::FibDaddrType, Value::FibAddrType(2)).to_string(), "fib daddr type local");
    }
}
