//! `spoofchk`: a pod may send only as itself. Frames and packets from a pod whose source MAC,
//! IPv4 or IPv6 address is not the pod's own are dropped, and so are ARP and neighbour
//! discovery messages claiming someone else's address (an ARP sender, a neighbour
//! advertisement's or a duplicate-address probe's target) and router advertisements and
//! redirects: otherwise any pod could forge a permitted peer's address past NetworkPolicy,
//! or take another pod's traffic.
//!
//! Where the check sits depends on where the pod's frames enter the node:
//! - bridge: `table bridge twill_guard`, on the bridge's prerouting hook (every frame from
//!   a pod's port, bridged or routed on);
//! - ptp: `table inet twill_guard`, on prerouting (each pod has its own routed veth; ARP needs
//!   no check there, as the node keeps its neighbours per veth and routes every other pod's
//!   address elsewhere);
//! - macvlan: frames between macvlans never reach the node's hooks, so the check is a table
//!   of the pod's own namespace on its interface's egress hook ([`pod_table`]); a pod with
//!   CAP_NET_ADMIN in its namespace can remove it.
//!
//! Like every twill plugin table (ADR 0003), the node tables' rules never change: a pod is
//! owner-tagged elements keyed by its host port, added and removed with its other elements
//! in one batch. Link-local IPv6 sources (fe80::/10) and the unspecified addresses of probes
//! (`::`, ARP sender 0.0.0.0) stay allowed: a pod's link-local address is its own business,
//! and NetworkPolicy never sees it.

use std::net::{IpAddr, Ipv6Addr};

use cni_spec::Attachment;
use fw::nft::owned::{Found, deletions, find_owned, find_where};
use fw::nft::{
    Batch, Chain, ChainType, Conn, DataType, Elem, Family, Field, Hook, KeyPart, Match, Operand, Rule, Set,
    Stmt, Table, Value, Verdict,
};
use ipnet::IpNet;

use crate::owner::is_stale;

const TABLE: &str = "twill_guard";
const LINK_LOCAL6: IpNet =
    IpNet::V6(ipnet::Ipv6Net::new_assert(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10));

/// Where a pod's frames enter the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Through a bridge port: a bridge-family table (MAC, IP, ARP, NDP).
    Bridge,
    /// Through a routed veth: an inet table (IP, NDP).
    Routed,
}

/// What a pod is: its host port, MAC and addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    pub port: String,
    pub mac: [u8; 6],
    pub ips: Vec<IpAddr>,
}

fn not(field: Field, operand: Operand) -> Match {
    Match::Is { field, negate: true, operand }
}

fn drop(matches: Vec<Match>) -> Rule {
    Rule::verdict(matches, Verdict::Drop)
}

/// A node-side drop that twilld's flow logs report: `kind` names the check. Every forged
/// packet is logged (these rules see no conntrack state); with nobody listening on the group
/// a log costs a lookup.
fn logged_drop(kind: &str, matches: Vec<Match>) -> Rule {
    let log = Stmt::Log { group: fw::nflog::TWILL_GROUP, prefix: fw::nflog::spoof_prefix(kind) };
    Rule::new(matches, vec![log, Stmt::Verdict(Verdict::Drop)])
}

/// The rules shared by both placements: IP sources, router messages, neighbour claims.
fn ip_rules(guarded: &dyn Fn() -> Match) -> Vec<Rule> {
    let drop = |kind: &str, matches| logged_drop(kind, matches);
    let unspecified6 = Operand::Value(Value::Addr(Ipv6Addr::UNSPECIFIED.into()));
    let link_local = || not(Field::Ip6Saddr, Operand::Prefix(LINK_LOCAL6));
    let target_not_link_local = || not(Field::NdTarget, Operand::Prefix(LINK_LOCAL6));
    let router = [134, 137].map(|t| KeyPart::Exact(Value::Icmpv6Type(t))).to_vec();
    let dad = Match::Is { field: Field::Ip6Saddr, negate: false, operand: unspecified6.clone() };
    vec![
        drop("ip4", vec![guarded(), Match::not_in_set(&[Field::Iifname, Field::IpSaddr], "ips4")]),
        drop(
            "ip6",
            vec![
                guarded(),
                link_local(),
                not(Field::Ip6Saddr, unspecified6),
                Match::not_in_set(&[Field::Iifname, Field::Ip6Saddr], "ips6"),
            ],
        ),
        drop(
            "router",
            vec![guarded(), Match::OneOf { field: Field::Icmpv6Type, negate: false, values: router }],
        ),
        drop(
            "nd",
            vec![
                guarded(),
                Match::eq(Field::Icmpv6Type, Value::Icmpv6Type(136)),
                target_not_link_local(),
                Match::not_in_set(&[Field::Iifname, Field::NdTarget], "ips6"),
            ],
        ),
        drop(
            "nd",
            vec![
                guarded(),
                Match::eq(Field::Icmpv6Type, Value::Icmpv6Type(135)),
                dad,
                target_not_link_local(),
                Match::not_in_set(&[Field::Iifname, Field::NdTarget], "ips6"),
            ],
        ),
    ]
}

/// The fixed table of a placement.
pub fn table(placement: Placement) -> Table {
    let guarded = || Match::in_set(&[Field::Iifname], "ports");
    let (family, mut rules) = match placement {
        Placement::Bridge => (
            Family::Bridge,
            vec![
                logged_drop(
                    "mac",
                    vec![guarded(), Match::not_in_set(&[Field::Iifname, Field::EtherSaddr], "macs")],
                ),
                logged_drop(
                    "arp",
                    vec![guarded(), Match::not_in_set(&[Field::Iifname, Field::ArpSha], "macs")],
                ),
                logged_drop(
                    "arp",
                    vec![
                        guarded(),
                        not(Field::ArpSpa, Operand::Value(Value::Addr(IpAddr::from([0, 0, 0, 0])))),
                        Match::not_in_set(&[Field::Iifname, Field::ArpSpa], "ips4"),
                    ],
                ),
            ],
        ),
        Placement::Routed => (Family::Inet, Vec::new()),
    };
    rules.extend(ip_rules(&guarded));
    let mut t = Table::new(family, TABLE);
    t.sets.push(Set::new("ports", &[DataType::Ifname]));
    if placement == Placement::Bridge {
        t.sets.push(Set::new("macs", &[DataType::Ifname, DataType::EtherAddr]));
    }
    t.sets.push(Set::new("ips4", &[DataType::Ifname, DataType::Ipv4Addr]));
    t.sets.push(Set::new("ips6", &[DataType::Ifname, DataType::Ipv6Addr]));
    // Before conntrack (-200): a forged packet leaves no connection behind.
    t.chains.push(Chain::hooked("prerouting", ChainType::Filter, Hook::Prerouting, -300, rules));
    t
}

/// The elements describing `pod`: set name and element.
pub fn elems(placement: Placement, owner: &str, pod: &Pod) -> Vec<(&'static str, Elem)> {
    let port = || KeyPart::Exact(Value::Ifname(pod.port.clone()));
    let elem = |key: Vec<KeyPart>| Elem::new(key).with_comment(owner);
    let mut out = vec![("ports", elem(vec![port()]))];
    if placement == Placement::Bridge {
        out.push(("macs", elem(vec![port(), KeyPart::Exact(Value::Ether(pod.mac))])));
    }
    for ip in &pod.ips {
        let set = if ip.is_ipv4() { "ips4" } else { "ips6" };
        out.push((set, elem(vec![port(), KeyPart::addr(*ip)])));
    }
    out
}

/// The batch adding `pod`'s elements.
pub fn add_batch(placement: Placement, owner: &str, pod: &Pod) -> Batch {
    let t = table(placement);
    let all = elems(placement, owner, pod);
    let mut batch = Batch::new();
    for set in &t.sets {
        batch.add_elems(
            &t.id(),
            set,
            all.iter().filter(|(s, _)| *s == set.name).map(|(_, e)| e.clone()).collect(),
        );
    }
    batch
}

/// The deletions of `owner`'s elements: by the pod's keys when known, else by reading.
pub fn teardown_batch(
    conn: &mut Conn,
    placement: Placement,
    owner: &str,
    pod: Option<&Pod>,
) -> Result<Batch, fw::nft::Error> {
    let t = table(placement);
    let found: Vec<Found> = match pod {
        Some(pod) => find_owned(conn, &t, &elems(placement, owner, pod), owner)?,
        None => find_where(conn, &t.id(), |o| o == owner)?,
    };
    Ok(deletions(&t.id(), &found))
}

pub fn gc_batch(
    conn: &mut Conn,
    placement: Placement,
    network: &str,
    valid: &[Attachment],
) -> Result<Batch, fw::nft::Error> {
    let t = table(placement);
    let found = find_where(conn, &t.id(), |o| is_stale(o, network, valid))?;
    Ok(deletions(&t.id(), &found))
}

/// The table guarding a macvlan pod from inside its own namespace: a netdev-family chain on
/// the egress hook of its interface `ifname`, which sees every frame leaving it (raw packet
/// sockets too). The rules name the pod's MAC and addresses: the table is the pod's own.
pub fn pod_table(ifname: &str, mac: [u8; 6], ips: &[IpAddr]) -> Table {
    let own = |v4: bool| -> Vec<KeyPart> {
        ips.iter().filter(|ip| ip.is_ipv4() == v4).map(|ip| KeyPart::addr(*ip)).collect()
    };
    let not_own = |field: Field, v4: bool| match own(v4) {
        values if values.is_empty() => None,
        values => Some(Match::OneOf { field, negate: true, values }),
    };
    let unspecified4 = Operand::Value(Value::Addr(IpAddr::from([0, 0, 0, 0])));
    let unspecified6 = Operand::Value(Value::Addr(Ipv6Addr::UNSPECIFIED.into()));
    let ether = Value::Ether(mac);
    let mut rules = vec![drop(vec![not(Field::EtherSaddr, Operand::Value(ether.clone()))])];
    rules.push(drop(vec![not(Field::ArpSha, Operand::Value(ether))]));
    rules.push(drop(
        [vec![not(Field::ArpSpa, unspecified4)], not_own(Field::ArpSpa, true).into_iter().collect()].concat(),
    ));
    let no_ipv4 = Match::eq(Field::Protocol, Value::EtherType(0x0800));
    rules.push(drop(vec![not_own(Field::IpSaddr, true).unwrap_or(no_ipv4)]));
    let mut v6 =
        vec![not(Field::Ip6Saddr, Operand::Prefix(LINK_LOCAL6)), not(Field::Ip6Saddr, unspecified6.clone())];
    v6.extend(not_own(Field::Ip6Saddr, false));
    rules.push(drop(v6));
    let router = [134, 137].map(|t| KeyPart::Exact(Value::Icmpv6Type(t))).to_vec();
    rules.push(drop(vec![Match::OneOf { field: Field::Icmpv6Type, negate: false, values: router }]));
    let claim = |icmp: u8, dad: bool| {
        let mut m = vec![Match::eq(Field::Icmpv6Type, Value::Icmpv6Type(icmp))];
        if dad {
            m.push(Match::Is { field: Field::Ip6Saddr, negate: false, operand: unspecified6.clone() });
        }
        m.push(not(Field::NdTarget, Operand::Prefix(LINK_LOCAL6)));
        m.extend(not_own(Field::NdTarget, false));
        drop(m)
    };
    rules.push(claim(136, false));
    rules.push(claim(135, true));
    let mut chain = Chain::hooked("egress", ChainType::Filter, Hook::Egress, 0, rules);
    if let Some(base) = chain.base.as_mut() {
        base.device = Some(ifname.to_string());
    }
    let mut t = Table::new(Family::Netdev, TABLE);
    t.chains.push(chain);
    t
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
