//! Policy routing rules (`ip rule add|del|show`): `from PREFIX [to PREFIX] lookup TABLE`,
//! what source-based routing needs.

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::{Error, Family, Handle, Result};

/// One rule whose action is a table lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub family: Family,
    /// `from PREFIX`; `None` is `from all`.
    pub src: Option<IpNet>,
    /// `to PREFIX`; `None` is any destination.
    pub dst: Option<IpNet>,
    /// `lookup TABLE`.
    pub table: u32,
    /// `priority N`; when adding, `None` lets the kernel pick one just above the last rule.
    pub priority: Option<u32>,
}

impl Rule {
    /// `from SRC lookup TABLE` for one address (`/32` or `/128`).
    pub fn from_addr(addr: std::net::IpAddr, table: u32) -> Rule {
        let src = IpNet::from(addr);
        Rule { family: Family::of(addr), src: Some(src), dst: None, table, priority: None }
    }
}

fn family_of(af: AddressFamily) -> Option<Family> {
    match af {
        AddressFamily::Inet => Some(Family::V4),
        AddressFamily::Inet6 => Some(Family::V6),
        _ => None,
    }
}

fn check(r: &Rule) -> Result<()> {
    for net in [r.src, r.dst].into_iter().flatten() {
        if Family::of(net.addr()) != r.family {
            return Err(Error::invalid("rule prefix", net, "family differs from the rule's"));
        }
    }
    Ok(())
}

/// The `RTM_NEWRULE`/`RTM_DELRULE` body for `r`.
pub(crate) fn build_rule(r: &Rule) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = r.family.af();
    m.header.src_len = r.src.map_or(0, |n| n.prefix_len());
    m.header.dst_len = r.dst.map_or(0, |n| n.prefix_len());
    // Tables above 255 only fit in FRA_TABLE; the header then says RT_TABLE_UNSPEC.
    m.header.table = u8::try_from(r.table).unwrap_or(0);
    m.header.action = RuleAction::ToTable;
    m.attributes.push(RuleAttribute::Table(r.table));
    m.attributes.extend(r.src.map(|n| RuleAttribute::Source(n.network())));
    m.attributes.extend(r.dst.map(|n| RuleAttribute::Destination(n.network())));
    m.attributes.extend(r.priority.map(RuleAttribute::Priority));
    m
}

/// A dumped rule; `None` for other families and for actions other than a table lookup.
pub(crate) fn parse_rule(m: &RuleMessage) -> Option<Rule> {
    let family = family_of(m.header.family)?;
    if m.header.action != RuleAction::ToTable {
        return None;
    }
    let mut r = Rule { family, src: None, dst: None, table: u32::from(m.header.table), priority: None };
    for attr in &m.attributes {
        match attr {
            RuleAttribute::Table(t) => r.table = *t,
            RuleAttribute::Source(ip) => r.src = IpNet::new(*ip, m.header.src_len).ok(),
            RuleAttribute::Destination(ip) => r.dst = IpNet::new(*ip, m.header.dst_len).ok(),
            RuleAttribute::Priority(p) => r.priority = Some(*p),
            _ => {}
        }
    }
    Some(r)
}

fn describe(r: &Rule) -> String {
    let from = r.src.map_or_else(|| "all".to_string(), |n| n.to_string());
    let to = r.dst.map(|n| format!(" to {n}")).unwrap_or_default();
    format!("from {from}{to} lookup {}", r.table)
}

impl Handle {
    /// `ip rule add from SRC [to DST] [priority N] lookup TABLE`. An identical rule with the
    /// same priority fails with `EEXIST`; without a priority the kernel adds another copy.
    pub fn rule_add(&self, r: &Rule) -> Result<()> {
        check(r)?;
        self.request(RouteNetlinkMessage::NewRule(build_rule(r)), NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
            .map_err(|f| self.fail(format_args!("add rule {}", describe(r)), f))
    }

    /// `ip rule del from SRC [to DST] [priority N] lookup TABLE`; absent → `is_not_found()`.
    pub fn rule_del(&self, r: &Rule) -> Result<()> {
        check(r)?;
        self.request(RouteNetlinkMessage::DelRule(build_rule(r)), 0)
            .map(drop)
            .map_err(|f| self.fail(format_args!("delete rule {}", describe(r)), f))
    }

    /// `ip [-4|-6] rule show`: every table-lookup rule of `family` (both when `None`).
    pub fn rule_list(&self, family: Option<Family>) -> Result<Vec<Rule>> {
        let mut req = RuleMessage::default();
        if let Some(f) = family {
            req.header.family = f.af();
        }
        let replies = self.dump(RouteNetlinkMessage::GetRule(req)).map_err(|f| self.fail("list rules", f))?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewRule(m) => parse_rule(m),
                _ => None,
            })
            .filter(|r| family.is_none_or(|f| r.family == f))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_addr_round_trips() {
        let r = Rule::from_addr("10.1.0.5".parse().unwrap(), 100);
        let m = build_rule(&r);
        assert_eq!(m.header.src_len, 32);
        assert_eq!(m.header.table, 100);
        assert_eq!(parse_rule(&m), Some(r));
        let r6 = Rule::from_addr("fd00::5".parse().unwrap(), 1000);
        let m6 = build_rule(&r6);
        assert_eq!((m6.header.src_len, m6.header.table), (128, 0), "big tables only in FRA_TABLE");
        assert_eq!(parse_rule(&m6), Some(r6));
    }

    #[test]
    fn mixed_families_are_refused() {
        let mut r = Rule::from_addr("10.1.0.5".parse().unwrap(), 100);
        r.dst = Some("fd00::/64".parse().unwrap());
        assert!(check(&r).is_err());
    }
}
