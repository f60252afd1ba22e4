//! `ipMasq`: traffic from a pod's addresses to anywhere outside its own subnet (and not
//! multicast) leaves masqueraded. Two backends:
//! - nftables (default): ONE shared table whose rules never change; a pod is a set element
//!   tagged with its owner, so ADD and DEL are one atomic element update each, and the cost
//!   does not grow with the number of pods.
//! - iptables: a chain per pod in the nat table, as the reference plugins do, written with
//!   one `iptables-restore --noflush` per family.

use cni_spec::{Error, IpConfig};
pub use fw::Backend;
use fw::{Batch, OwnedTable};
use ipnet::IpNet;

use crate::kernel::{fw_error, iptables_error};
use crate::owner::is_stale;
use crate::undo::Undo;

const TABLE: &str = "twill_masq";

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

/// Masquerades `ips` (each with its subnet) for `owner`.
pub fn setup(backend: Backend, owner: &str, ips: &[IpNet]) -> Result<(), Error> {
    match backend {
        Backend::Nftables => table().add(&nft_elements(owner, ips)).map_err(fw_error),
        Backend::Iptables => ipt::setup(owner, ips),
    }
}

/// [`setup`] for the addresses of a result, registering the teardown with `undo`.
pub fn setup_with_undo(
    backend: Backend,
    owner: &str,
    ips: &[IpConfig],
    undo: &mut Undo<'_>,
) -> Result<(), Error> {
    let nets: Vec<IpNet> = ips.iter().map(|ip| ip.address).collect();
    setup(backend, owner, &nets)?;
    let owner = owner.to_string();
    undo.push("remove masquerading", move || teardown(backend, &owner));
    Ok(())
}

/// Removes whatever `owner` has; nothing there is fine.
pub fn teardown(backend: Backend, owner: &str) -> Result<(), Error> {
    match backend {
        Backend::Nftables => table().remove_owner(owner).map(drop).map_err(fw_error),
        Backend::Iptables => ipt::teardown(owner),
    }
}

/// GC: removes the masquerading of every attachment of `network` not in `valid`.
pub fn gc(backend: Backend, network: &str, valid: &[cni_spec::Attachment]) -> Result<(), Error> {
    let stale = |owner: &str| is_stale(owner, network, valid);
    match backend {
        Backend::Nftables => table().remove_where(stale).map(drop).map_err(fw_error),
        Backend::Iptables => {
            let owners = fw::iptables::owners_in("nat", ipt::TAG).map_err(iptables_error)?;
            owners.iter().filter(|o| stale(o)).try_for_each(|o| ipt::teardown(o))
        }
    }
}

/// The fixed table: sets hold the pods, rules never change.
pub fn nft_table() -> String {
    format!(
        "table inet {TABLE} {{
  set masq4 {{ type ipv4_addr; }}
  set masq6 {{ type ipv6_addr; }}
  set local4 {{ type ipv4_addr . ipv4_addr; flags interval; }}
  set local6 {{ type ipv6_addr . ipv6_addr; flags interval; }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr . ip daddr @local4 return
    ip6 saddr . ip6 daddr @local6 return
    ip daddr 224.0.0.0/4 return
    ip6 daddr ff00::/8 return
    ip saddr @masq4 masquerade
    ip6 saddr @masq6 masquerade
  }}
}}"
    )
}

/// The element statements for one pod.
pub fn nft_elements(owner: &str, ips: &[IpNet]) -> Batch {
    let mut batch = Batch::new();
    for ip in ips {
        let v = if ip.addr().is_ipv4() { 4 } else { 6 };
        let (addr, net) = (ip.addr(), ip.trunc());
        batch.add(format!("add element inet {TABLE} masq{v} {{ {addr} comment \"{owner}\" }}"));
        batch.add(format!("add element inet {TABLE} local{v} {{ {addr} . {net} comment \"{owner}\" }}"));
    }
    batch
}

fn table() -> OwnedTable {
    OwnedTable { family: "inet", name: TABLE, definition: nft_table() }
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
    fn elements_carry_owner_and_subnet() {
        let b = nft_elements("n/c/eth0", &["10.1.0.5/24".parse().unwrap(), "fd00::5/64".parse().unwrap()]);
        let text = b.text();
        assert!(text.contains("add element inet twill_masq masq4 { 10.1.0.5 comment \"n/c/eth0\" }"));
        assert!(text.contains("local4 { 10.1.0.5 . 10.1.0.0/24 comment \"n/c/eth0\" }"));
        assert!(text.contains("local6 { fd00::5 . fd00::/64 comment \"n/c/eth0\" }"));
    }
}
