//! `conditionsV4`/`conditionsV6` for the nftables backend: extra matches ANDed to a family's
//! forwarding. The reference passes them to nft as text; twill programs nf_tables directly,
//! so it understands the matches such conditions are written with and refuses anything else
//! up front (code 7), naming what it understands:
//!
//! `FIELD [==|!=] VALUE`, repeated, where FIELD is `ip saddr`, `ip daddr`, `ip6 saddr`,
//! `ip6 daddr` (an address, a prefix or a range `A-B`), `iifname`, `oifname` (a name, quoted
//! or not), `meta mark` (a number), `meta l4proto` (tcp, udp, sctp or a number), `th sport`,
//! `th dport` (a port or a range). The list may split a condition into words, as in
//! `["ip", "saddr", "!=", "192.0.2.0/24"]`.

use std::net::IpAddr;

use cni_spec::Error;
use fw::nft::{Field, Match, Operand, Value};
use ipnet::IpNet;

const UNDERSTOOD: &str = "FIELD [!=] VALUE with FIELD one of ip saddr, ip daddr, ip6 saddr, ip6 daddr, \
    iifname, oifname, meta mark, meta l4proto, th sport, th dport";

fn field(words: &[&str]) -> Option<(Field, usize)> {
    let two = |f| Some((f, 2));
    match words {
        ["ip", "saddr", ..] => two(Field::IpSaddr),
        ["ip", "daddr", ..] => two(Field::IpDaddr),
        ["ip6", "saddr", ..] => two(Field::Ip6Saddr),
        ["ip6", "daddr", ..] => two(Field::Ip6Daddr),
        ["th", "sport", ..] => two(Field::ThSport),
        ["th", "dport", ..] => two(Field::ThDport),
        ["meta", "mark", ..] => two(Field::Mark),
        ["meta", "l4proto", ..] => two(Field::L4Proto),
        ["meta", "iifname", ..] => two(Field::Iifname),
        ["meta", "oifname", ..] => two(Field::Oifname),
        ["iifname", ..] => Some((Field::Iifname, 1)),
        ["oifname", ..] => Some((Field::Oifname, 1)),
        ["mark", ..] => Some((Field::Mark, 1)),
        _ => None,
    }
}

fn addr(text: &str, v6: bool) -> Option<IpAddr> {
    text.parse::<IpAddr>().ok().filter(|a| a.is_ipv6() == v6)
}

fn number(text: &str) -> Option<u32> {
    match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

fn operand(field: Field, text: &str) -> Option<Operand> {
    let v6 = matches!(field, Field::Ip6Saddr | Field::Ip6Daddr);
    match field {
        Field::IpSaddr | Field::IpDaddr | Field::Ip6Saddr | Field::Ip6Daddr => {
            if let Some((lo, hi)) = text.split_once('-') {
                return Some(Operand::Range(Value::Addr(addr(lo, v6)?), Value::Addr(addr(hi, v6)?)));
            }
            if text.contains('/') {
                let net: IpNet =
                    text.parse().ok().filter(|n: &IpNet| n.addr().is_ipv6() == v6 && n.prefix_len() > 0)?;
                return Some(Operand::Prefix(net.trunc()));
            }
            Some(Operand::Value(Value::Addr(addr(text, v6)?)))
        }
        Field::Iifname | Field::Oifname => {
            let name = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
            let ok = !name.is_empty() && name.len() < 16 && !name.contains(['*', '"', '\\']);
            ok.then(|| Operand::Value(Value::Ifname(name.to_string())))
        }
        Field::Mark => Some(Operand::Value(Value::Mark(number(text)?))),
        Field::L4Proto => {
            let p = match text {
                "tcp" => 6,
                "udp" => 17,
                "sctp" => 132,
                n => u8::try_from(number(n)?).ok()?,
            };
            Some(Operand::Value(Value::Proto(p)))
        }
        _ => {
            let port = |t: &str| t.parse::<u16>().ok().map(Value::Port);
            match text.split_once('-') {
                Some((lo, hi)) => Some(Operand::Range(port(lo)?, port(hi)?)),
                None => Some(Operand::Value(port(text)?)),
            }
        }
    }
}

/// Parses a conditions list (`name` is the option, for the error) into matches.
pub fn parse(name: &str, conditions: &[String]) -> Result<Vec<Match>, Error> {
    let joined = conditions.join(" ");
    let words: Vec<&str> = joined.split_whitespace().collect();
    let bad = |at: usize| {
        let near = words.get(at..).unwrap_or_default().join(" ");
        Error::invalid_config(format!(
            "{name}: cannot use {near:?} of {joined:?}: twill's nftables backend understands {UNDERSTOOD}"
        ))
    };
    let mut out = Vec::new();
    let mut at = 0;
    while at < words.len() {
        let (field, used) = field(&words[at..]).ok_or_else(|| bad(at))?;
        let mut next = at + used;
        let negate = match words.get(next) {
            Some(&"!=") | Some(&"ne") => true,
            Some(&"==") | Some(&"eq") => false,
            _ => {
                next -= 1;
                false
            }
        };
        next += 1;
        let value = words.get(next).ok_or_else(|| bad(at))?;
        let operand = operand(field, value).ok_or_else(|| bad(at))?;
        out.push(Match::Is { field, negate, operand });
        at = next + 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(conds: &[&str]) -> Result<String, Error> {
        let conds: Vec<String> = conds.iter().map(|s| s.to_string()).collect();
        let ms = parse("conditionsV4", &conds)?;
        Ok(ms.iter().map(Match::to_string).collect::<Vec<_>>().join(" "))
    }

    #[test]
    fn matches_in_one_string_or_many() {
        assert_eq!(text(&["ip saddr != 192.0.2.0/24"]).unwrap(), "ip saddr != 192.0.2.0/24");
        assert_eq!(text(&["ip", "saddr", "!=", "192.0.2.0/24"]).unwrap(), "ip saddr != 192.0.2.0/24");
        assert_eq!(
            text(&["iifname eth0", "ip daddr 10.0.0.1-10.0.0.9", "meta mark 0x10", "th dport 80-90"])
                .unwrap(),
            "iifname \"eth0\" ip daddr 10.0.0.1-10.0.0.9 meta mark 0x00000010 th dport 80-90"
        );
        assert_eq!(
            text(&["ip6 daddr == fd00::1", "meta l4proto udp"]).unwrap(),
            "ip6 daddr fd00::1 meta l4proto udp"
        );
        assert_eq!(text(&["oifname \"br0\""]).unwrap(), "oifname \"br0\"");
        assert_eq!(text(&["ip saddr 10.1.2.3/8"]).unwrap(), "ip saddr 10.0.0.0/8");
    }

    #[test]
    fn anything_else_is_a_clear_code_7() {
        for bad in [
            vec!["ip nosuchfield 1"],
            vec!["ip saddr"],
            vec!["ip saddr fd00::1"],
            vec!["ip saddr 0.0.0.0/0"],
            vec!["iifname eth*"],
            vec!["tcp dport 80"],
            vec!["ip saddr { 10.0.0.1, 10.0.0.2 }"],
        ] {
            let e = text(&bad).unwrap_err();
            assert_eq!(e.code.code(), 7, "{bad:?}");
            assert!(e.msg.contains("understands FIELD [!=] VALUE"), "{}", e.msg);
        }
        assert!(text(&["ip nosuchfield 1"]).unwrap_err().msg.contains("cannot use \"ip nosuchfield 1\""));
    }
}
