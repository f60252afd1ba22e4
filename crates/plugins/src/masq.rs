//! `ipMasq`: traffic from a pod's addresses to anywhere outside its own subnet (and not
//! multicast) leaves masqueraded. Two backends:
//! - nftables (default): ONE shared table whose rules never change; a pod is a set element
//!   tagged with its owner, so ADD and DEL are one atomic element update each, and the cost
//!   does not grow with the number of pods.
//! - iptables: a chain per pod in the nat table, as the reference plugins do, written with
//!   one `iptables-restore --noflush` per family.

use cni_spec::Error;
use fw::Batch;
use ipnet::IpNet;

const TABLE: &str = "twill_masq";

/// Which firewall implementation does the masquerading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Nftables,
    Iptables,
}

impl Backend {
    /// `ipMasqBackend`: absent means nftables.
    pub fn parse(value: Option<&str>) -> Result<Backend, Error> {
        match value {
            None | Some("nftables") => Ok(Backend::Nftables),
            Some("iptables") => Ok(Backend::Iptables),
            Some(other) => Err(Error::invalid_config(format!(
                "unknown ipMasqBackend {other:?}: expected \"nftables\" or \"iptables\""
            ))),
        }
    }
}

/// Who owns an entry: one attachment of one network.
pub fn owner(network: &str, container_id: &str, ifname: &str) -> String {
    format!("{network}/{container_id}/{ifname}")
}

/// Masquerades `ips` (each with its subnet) for `owner`.
pub fn setup(backend: Backend, owner: &str, ips: &[IpNet]) -> Result<(), Error> {
    match backend {
        Backend::Nftables => nft_setup(owner, ips),
        Backend::Iptables => ipt::setup(owner, ips),
    }
}

/// Removes whatever `owner` has; nothing there is fine.
pub fn teardown(backend: Backend, owner: &str) -> Result<(), Error> {
    match backend {
        Backend::Nftables => nft_teardown(owner),
        Backend::Iptables => ipt::teardown(owner),
    }
}

/// GC: removes the masquerading of every attachment of `network` not in `valid`.
pub fn gc(backend: Backend, network: &str, valid: &[cni_spec::Attachment]) -> Result<(), Error> {
    let stale = |owner: &str| is_stale(owner, network, valid);
    match backend {
        Backend::Nftables => table(&nft_table()).remove_where(stale).map(drop).map_err(fw_error),
        Backend::Iptables => {
            for owner in ipt::owners()? {
                if stale(&owner) {
                    ipt::teardown(&owner)?;
                }
            }
            Ok(())
        }
    }
}

/// Whether an owner tag belongs to `network` and names an attachment not in `valid`.
pub fn is_stale(owner: &str, network: &str, valid: &[cni_spec::Attachment]) -> bool {
    let mut parts = owner.splitn(3, '/');
    let (Some(net), Some(id), Some(ifname)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    net == network && !valid.iter().any(|a| a.container_id == id && a.ifname == ifname)
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

fn table(definition: &str) -> fw::OwnedTable<'_> {
    fw::OwnedTable { family: "inet", name: TABLE, definition }
}

fn nft_setup(owner: &str, ips: &[IpNet]) -> Result<(), Error> {
    table(&nft_table()).add(&nft_elements(owner, ips)).map_err(fw_error)
}

fn nft_teardown(owner: &str) -> Result<(), Error> {
    table(&nft_table()).remove_owner(owner).map(drop).map_err(fw_error)
}

pub fn fw_error(e: fw::Error) -> Error {
    Error::internal(e.to_string())
}

mod ipt {
    //! The iptables backend: per-pod chain `TWILL-MASQ-<hash of owner>` in the nat table.

    use std::io::Write;
    use std::process::{Command, Stdio};

    use super::*;

    /// The chain of one owner; iptables chain names stay under 29 characters.
    pub fn chain(owner: &str) -> String {
        let hash =
            owner.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3));
        format!("TWILL-MASQ-{hash:016x}")
    }

    pub fn rules(owner: &str, ips: &[IpNet], v6: bool) -> String {
        let chain = chain(owner);
        let multicast = if v6 { "ff00::/8" } else { "224.0.0.0/4" };
        let mut text = format!("*nat\n:{chain} - [0:0]\n");
        for ip in ips.iter().filter(|ip| ip.addr().is_ipv6() == v6) {
            let c = format!("-m comment --comment \"twill {owner}\"");
            text += &format!("-A {chain} -d {} {c} -j ACCEPT\n", ip.trunc());
            text += &format!("-A {chain} ! -d {multicast} {c} -j MASQUERADE\n");
            text += &format!("-A POSTROUTING -s {} {c} -j {chain}\n", ip.addr());
        }
        text + "COMMIT\n"
    }

    pub fn setup(owner: &str, ips: &[IpNet]) -> Result<(), Error> {
        for v6 in [false, true] {
            if ips.iter().any(|ip| ip.addr().is_ipv6() == v6) {
                restore(v6, &rules(owner, ips, v6))?;
            }
        }
        Ok(())
    }

    /// Every owner with rules in the nat table (both families).
    pub fn owners() -> Result<Vec<String>, Error> {
        let mut owners = Vec::new();
        for tool in ["iptables-save", "ip6tables-save"] {
            let saved = run(tool, &["-t", "nat"], None)?;
            for line in saved.lines() {
                if let Some(rest) = line.split("--comment \"twill ").nth(1)
                    && let Some(owner) = rest.split('"').next()
                    && !owners.iter().any(|o| o == owner)
                {
                    owners.push(owner.to_string());
                }
            }
        }
        Ok(owners)
    }

    pub fn teardown(owner: &str) -> Result<(), Error> {
        let chain = chain(owner);
        for v6 in [false, true] {
            let saved = run(if v6 { "ip6tables-save" } else { "iptables-save" }, &["-t", "nat"], None)?;
            if !saved
                .lines()
                .any(|l| l == format!(":{chain} - [0:0]") || l.starts_with(&format!(":{chain} ")))
            {
                continue;
            }
            let jumps = saved
                .lines()
                .filter(|l| l.starts_with("-A POSTROUTING ") && l.ends_with(&format!("-j {chain}")))
                .map(|l| l.replacen("-A ", "-D ", 1));
            let mut text = String::from("*nat\n");
            for jump in jumps {
                text += &jump;
                text.push('\n');
            }
            text += &format!("-F {chain}\n-X {chain}\nCOMMIT\n");
            restore(v6, &text)?;
        }
        Ok(())
    }

    fn restore(v6: bool, text: &str) -> Result<(), Error> {
        let tool = if v6 { "ip6tables-restore" } else { "iptables-restore" };
        run(tool, &["--noflush", "-w", "5"], Some(text)).map(drop)
    }

    fn run(tool: &str, args: &[&str], stdin: Option<&str>) -> Result<String, Error> {
        let fail = |e: String| Error::internal(format!("{tool}: {e}"));
        let mut child = Command::new(tool)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(e.to_string()))?;
        if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
            input.write_all(text.as_bytes()).map_err(|e| fail(e.to_string()))?;
        }
        let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
        if !out.status.success() {
            return Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_string()));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
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
        assert_eq!(Backend::parse(None).unwrap(), Backend::Nftables);
        assert_eq!(Backend::parse(Some("iptables")).unwrap(), Backend::Iptables);
        assert_eq!(Backend::parse(Some("pf")).unwrap_err().code.code(), 7);
    }

    #[test]
    fn stale_owners() {
        let valid = vec![cni_spec::Attachment { container_id: "keep".into(), ifname: "eth0".into() }];
        assert!(is_stale("net/gone/eth0", "net", &valid));
        assert!(!is_stale("net/keep/eth0", "net", &valid));
        assert!(is_stale("net/keep/eth1", "net", &valid));
        assert!(!is_stale("other/gone/eth0", "net", &valid));
        assert!(!is_stale("garbage", "net", &valid));
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
