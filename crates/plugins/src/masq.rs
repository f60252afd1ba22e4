//! `ipMasq`: traffic from a pod's addresses to anywhere outside its own subnet (and not
//! multicast) leaves masqueraded. Two backends:
//! - nftables (default): ONE shared table whose rules never change; a pod is a set element
//!   tagged with its owner, so ADD and DEL are one atomic element update each, and the cost
//!   does not grow with the number of pods.
//! - iptables: a chain per pod in the nat table, as the reference plugins do, written with
//!   one `iptables-restore --noflush` per family.

use cni_spec::{Attachment, Error};
pub use fw::Backend;
use fw::nft::owned::{Found, deletions, find_owned, find_where};
use fw::nft::{
    Batch, Chain, ChainType, Conn, DataType, Elem, Family, Field, Hook, KeyPart, Match, Operand, Rule, Set,
    Stmt, Table, Verdict,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::kernel::iptables_error;
use crate::owner::is_stale;

const TABLE: &str = "twill_masq";
pub const MULTICAST4: IpNet = IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(224, 0, 0, 0), 4));
pub const MULTICAST6: IpNet = IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8));

/// `ipMasqBackend`: absent means nftables.
pub fn parse_backend(value: Option<&str>) -> Result<Backend, Error> {
    match value {
        None | Some("nftables") => Ok(Backend::Nftables),
        Some("iptables") => Ok(Backend::Iptables),
        Some(other) => Err(Error::invalid_config(format!(
            "unknown ipMasqBackend {other:?}: expected \"nftables\" or \"iptables\""
        ))),
    }
}

/// The backend of `ipMasq`/`ipMasqBackend`; `None` when masquerading is off.
pub fn configured(ip_masq: bool, backend: Option<&str>) -> Result<Option<Backend>, Error> {
    ip_masq.then(|| parse_backend(backend)).transpose()
}

/// The fixed table: sets hold the pods, rules never change.
pub fn table() -> Table {
    let mut t = Table::new(Family::Inet, TABLE);
    for (v, addr) in [(4, DataType::Ipv4Addr), (6, DataType::Ipv6Addr)] {
        t.sets.push(Set::new(format!("masq{v}"), &[addr]));
    }
    for (v, addr) in [(4, DataType::Ipv4Addr), (6, DataType::Ipv6Addr)] {
        t.sets.push(Set::new(format!("local{v}"), &[addr, addr]).intervals());
    }
    let ret = |m: Match| Rule::verdict(vec![m], Verdict::Return);
    let prefix = |field, net: IpNet| Match::Is { field, negate: false, operand: Operand::Prefix(net) };
    let rules = vec![
        ret(Match::in_set(&[Field::IpSaddr, Field::IpDaddr], "local4")),
        ret(Match::in_set(&[Field::Ip6Saddr, Field::Ip6Daddr], "local6")),
        ret(prefix(Field::IpDaddr, MULTICAST4)),
        ret(prefix(Field::Ip6Daddr, MULTICAST6)),
        Rule::new(vec![Match::in_set(&[Field::IpSaddr], "masq4")], vec![Stmt::Masquerade]),
        Rule::new(vec![Match::in_set(&[Field::Ip6Saddr], "masq6")], vec![Stmt::Masquerade]),
    ];
    t.chains.push(Chain::hooked("postrouting", ChainType::Nat, Hook::Postrouting, 100, rules));
    t
}

/// The elements masquerading `ips` (each with its subnet): set name and element.
pub fn nft_elems(owner: &str, ips: &[IpNet]) -> Vec<(&'static str, Elem)> {
    let mut out = Vec::new();
    for ip in ips {
        let v6 = ip.addr().is_ipv6();
        let (masq, local) = if v6 { ("masq6", "local6") } else { ("masq4", "local4") };
        out.push((masq, Elem::new(vec![KeyPart::addr(ip.addr())]).with_comment(owner)));
        out.push((
            local,
            Elem::new(vec![KeyPart::addr(ip.addr()), KeyPart::net(ip.trunc())]).with_comment(owner),
        ));
    }
    out
}

/// The batch adding the masquerading of `ips` for `owner`.
pub fn add_batch(owner: &str, ips: &[IpNet]) -> Batch {
    let t = table();
    let mut batch = Batch::new();
    for set in &t.sets {
        let elems =
            nft_elems(owner, ips).into_iter().filter(|(s, _)| *s == set.name).map(|(_, e)| e).collect();
        batch.add_elems(&t.id(), set, elems);
    }
    batch
}

/// What `owner` has in the table: found by the keys of `ips` when they are known (DEL with
/// a prevResult), else by reading the sets.
pub fn owned(conn: &mut Conn, owner: &str, ips: Option<&[IpNet]>) -> Result<Vec<Found>, fw::nft::Error> {
    match ips {
        Some(ips) => find_owned(conn, &table(), &nft_elems(owner, ips), owner),
        None => find_where(conn, &table().id(), |o| o == owner),
    }
}

/// The deletions undoing [`add_batch`] for `owner`.
pub fn teardown_batch(conn: &mut Conn, owner: &str, ips: Option<&[IpNet]>) -> Result<Batch, fw::nft::Error> {
    Ok(deletions(&table().id(), &owned(conn, owner, ips)?))
}

/// GC: the deletions of every attachment of `network` not in `valid`.
pub fn gc_batch(conn: &mut Conn, network: &str, valid: &[Attachment]) -> Result<Batch, fw::nft::Error> {
    let found = find_where(conn, &table().id(), |o| is_stale(o, network, valid))?;
    Ok(deletions(&table().id(), &found))
}

/// iptables backend: masquerades `ips` for `owner`.
pub fn ipt_setup(owner: &str, ips: &[IpNet]) -> Result<(), Error> {
    ipt::setup(owner, ips)
}

/// iptables backend: removes whatever `owner` has.
pub fn ipt_teardown(owner: &str) -> Result<(), Error> {
    ipt::teardown(owner)
}

/// iptables backend: removes the masquerading of stale attachments of `network`.
pub fn ipt_gc(network: &str, valid: &[Attachment]) -> Result<(), Error> {
    let owners = fw::iptables::owners_in("nat", ipt::TAG).map_err(iptables_error)?;
    owners.iter().filter(|o| is_stale(o, network, valid)).try_for_each(|o| ipt::teardown(o))
}

mod ipt {
    //! The iptables backend: per-pod chain `TWILL-MASQ-<hash of owner>` in the nat table.

    use fw::iptables;

    use super::*;

    /// The first word of the rules' comments; the owner follows.
    pub const TAG: &str = "twill";

    /// The chain of one owner; iptables chain names stay under 29 characters.
    pub fn chain(owner: &str) -> String {
        fw::stable_name("TWILL-MASQ-", owner)
    }

    pub fn rules(owner: &str, ips: &[IpNet], v6: bool) -> String {
        let chain = chain(owner);
        let multicast = if v6 { "ff00::/8" } else { "224.0.0.0/4" };
        let mut text = format!("*nat\n:{chain} - [0:0]\n");
        for ip in ips.iter().filter(|ip| ip.addr().is_ipv6() == v6) {
            let c = format!("-m comment --comment \"{TAG} {owner}\"");
            text += &format!("-A {chain} -d {} {c} -j ACCEPT\n", ip.trunc());
            text += &format!("-A {chain} ! -d {multicast} {c} -j MASQUERADE\n");
            text += &format!("-A POSTROUTING -s {} {c} -j {chain}\n", ip.addr());
        }
        text + "COMMIT\n"
    }

    pub fn setup(owner: &str, ips: &[IpNet]) -> Result<(), Error> {
        for v6 in [false, true] {
            if ips.iter().any(|ip| ip.addr().is_ipv6() == v6) {
                iptables::restore(v6, &rules(owner, ips, v6)).map_err(iptables_error)?;
            }
        }
        Ok(())
    }

    pub fn teardown(owner: &str) -> Result<(), Error> {
        for v6 in [false, true] {
            let saved = iptables::save(v6, "nat").map_err(iptables_error)?;
            if let Some(text) = iptables::remove_chain("nat", &saved, &chain(owner)) {
                iptables::restore(v6, &text).map_err(iptables_error)?;
            }
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn chain_names_fit_and_differ() {
            let a = chain("net/c1/eth0");
            assert!(a.len() <= 28, "{a}");
            assert_ne!(a, chain("net/c2/eth0"));
        }

        #[test]
        fn rules_per_family() {
            let ips: Vec<IpNet> = vec!["10.1.0.5/24".parse().unwrap(), "fd00::5/64".parse().unwrap()];
            let v4 = rules("n/c/eth0", &ips, false);
            assert!(v4.contains("-d 10.1.0.0/24"));
            assert!(v4.contains("! -d 224.0.0.0/4"));
            assert!(v4.contains("-A POSTROUTING -s 10.1.0.5 "));
            assert!(!v4.contains("fd00"));
            assert!(rules("n/c/eth0", &ips, true).contains("! -d ff00::/8"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names() {
        assert_eq!(parse_backend(None).unwrap(), Backend::Nftables);
        assert_eq!(parse_backend(Some("iptables")).unwrap(), Backend::Iptables);
        assert_eq!(parse_backend(Some("pf")).unwrap_err().code.code(), 7);
    }

    #[test]
    fn golden_table_and_elements() {
        let text = table().text();
        assert!(
            text.contains(
                "\t\tip saddr . ip daddr @local4 return\n\t\tip6 saddr . ip6 daddr @local6 return\n"
            ),
            "{text}"
        );
        assert!(text.contains("type nat hook postrouting priority srcnat; policy accept;"), "{text}");
        let b = add_batch("n/c/eth0", &["10.1.0.5/24".parse().unwrap(), "fd00::5/64".parse().unwrap()]);
        assert_eq!(
            b.text(),
            "add element inet twill_masq masq4 { 10.1.0.5 comment \"n/c/eth0\" }\n\
             add element inet twill_masq masq6 { fd00::5 comment \"n/c/eth0\" }\n\
             add element inet twill_masq local4 { 10.1.0.5 . 10.1.0.0/24 comment \"n/c/eth0\" }\n\
             add element inet twill_masq local6 { fd00::5 . fd00::/64 comment \"n/c/eth0\" }\n"
        );
    }
}
