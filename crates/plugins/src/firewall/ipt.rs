//! The iptables backend, in the reference's layout: FORWARD jumps to `CNI-FORWARD`, which
//! first jumps to the admin chain and then accepts each pod's traffic. twill's rules carry
//! the comment `twill OWNER` so DEL and GC find them without prevResult; the reference's
//! uncommented rules are removed by address when prevResult names them. Each change is one
//! `iptables-restore --noflush` per family, taken under twill's firewall lock because
//! declaring an existing chain there would flush it.

use std::net::IpAddr;

use cni_spec::{Attachment, Error};
use fw::iptables::{self, has_chain, has_jump, remove_rules, tagged_owner};

use crate::kernel::fw_locked;
use crate::owner::is_stale;

const CHAIN: &str = "CNI-FORWARD";
/// The first word of twill's rule comments; the owner follows.
const TAG: &str = "twill";

fn comment(owner: &str) -> String {
    format!("--comment \"{TAG} {owner}\"")
}

fn host_prefix(ip: &IpAddr) -> String {
    if ip.is_ipv4() { format!("{ip}/32") } else { format!("{ip}/128") }
}

/// The pod's two rules, as iptables-save prints them.
fn pod_rules(owner: &str, ip: &IpAddr) -> [String; 2] {
    let (p, c) = (host_prefix(ip), comment(owner));
    [
        format!("-A {CHAIN} -d {p} -m conntrack --ctstate RELATED,ESTABLISHED -m comment {c} -j ACCEPT"),
        format!("-A {CHAIN} -s {p} -m comment {c} -j ACCEPT"),
    ]
}

/// The reference plugin's rules for an address (no comment).
fn reference_rules(ip: &IpAddr) -> [String; 2] {
    let p = host_prefix(ip);
    [
        format!("-A {CHAIN} -d {p} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
        format!("-A {CHAIN} -s {p} -j ACCEPT"),
    ]
}

/// The restore input adding `ips` of one family for `owner` to what `saved` shows (pure).
pub fn plan_add(saved: &str, owner: &str, ips: &[IpAddr], admin: &str) -> String {
    let mut text = String::from("*filter\n");
    for chain in [CHAIN, admin] {
        if !has_chain(saved, chain) {
            text += &format!(":{chain} - [0:0]\n");
        }
    }
    if !has_jump(saved, "FORWARD", CHAIN) {
        text += &format!("-I FORWARD 1 -m comment --comment \"CNI firewall plugin rules\" -j {CHAIN}\n");
    }
    if !has_jump(saved, CHAIN, admin) {
        text += &format!(
            "-I {CHAIN} 1 -m comment --comment \"CNI firewall plugin admin overrides\" -j {admin}\n"
        );
    }
    for rule in ips.iter().flat_map(|ip| pod_rules(owner, ip)) {
        if !saved.lines().any(|l| l == rule) {
            text += &rule;
            text.push('\n');
        }
    }
    text + "COMMIT\n"
}

/// The restore input deleting every rule in `saved` that `gone` picks, `None` if there is
/// none (pure).
pub fn plan_delete(saved: &str, gone: impl Fn(&str) -> bool) -> Option<String> {
    remove_rules("filter", saved, |l| l.starts_with(&format!("-A {CHAIN} ")) && gone(l))
}

/// The owner a rule line is tagged with.
fn owner_of(line: &str) -> Option<&str> {
    tagged_owner(line, TAG)
}

fn families(ips: &[IpAddr]) -> impl Iterator<Item = (bool, Vec<IpAddr>)> + '_ {
    [false, true]
        .into_iter()
        .map(move |v6| (v6, ips.iter().copied().filter(|ip| ip.is_ipv6() == v6).collect()))
}

pub fn setup(owner: &str, ips: &[IpAddr], admin: &str) -> Result<(), Error> {
    fw_locked(|| {
        for (v6, ips) in families(ips).filter(|(_, ips)| !ips.is_empty()) {
            restore(v6, &plan_add(&save(v6)?, owner, &ips, admin))?;
        }
        Ok(())
    })
}

/// Removes `owner`'s rules, and the reference's rules for `prev_ips` (from prevResult).
pub fn teardown(owner: &str, prev_ips: &[IpAddr]) -> Result<(), Error> {
    fw_locked(|| {
        for (v6, ips) in families(prev_ips) {
            let reference: Vec<String> = ips.iter().flat_map(reference_rules).collect();
            let gone = |l: &str| owner_of(l) == Some(owner) || reference.iter().any(|r| r == l);
            if let Some(text) = plan_delete(&save(v6)?, gone) {
                restore(v6, &text)?;
            }
        }
        Ok(())
    })
}

pub fn gc(network: &str, valid: &[Attachment]) -> Result<(), Error> {
    fw_locked(|| {
        for v6 in [false, true] {
            let gone = |l: &str| owner_of(l).is_some_and(|o| is_stale(o, network, valid));
            if let Some(text) = plan_delete(&save(v6)?, gone) {
                restore(v6, &text)?;
            }
        }
        Ok(())
    })
}

pub fn check(owner: &str, ips: &[IpAddr], admin: &str) -> Result<(), Error> {
    for (v6, ips) in families(ips).filter(|(_, ips)| !ips.is_empty()) {
        let saved = save(v6)?;
        if !has_jump(&saved, "FORWARD", CHAIN) || !has_jump(&saved, CHAIN, admin) {
            return Err(Error::internal(format!("firewall: FORWARD does not reach {CHAIN} and {admin}")));
        }
        let rules: Vec<String> = ips.iter().flat_map(|ip| pod_rules(owner, ip)).collect();
        if let Some(rule) = rules.iter().find(|r| !saved.lines().any(|l| l == *r)) {
            return Err(Error::internal(format!("firewall: rule {rule:?} not found")));
        }
    }
    Ok(())
}

fn save(v6: bool) -> Result<String, Error> {
    iptables::save(v6, "filter").map_err(firewall_error)
}

fn restore(v6: bool, text: &str) -> Result<(), Error> {
    iptables::restore(v6, text).map_err(firewall_error)
}

fn firewall_error(e: iptables::Error) -> Error {
    Error::internal(format!("firewall: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";

    #[test]
    fn first_pod_creates_chains_and_jumps() {
        let ip: IpAddr = "10.1.0.5".parse().unwrap();
        let text = plan_add(EMPTY, "n/c/eth0", &[ip], "CNI-ADMIN");
        assert_eq!(
            text,
            "*filter
:CNI-FORWARD - [0:0]
:CNI-ADMIN - [0:0]
-I FORWARD 1 -m comment --comment \"CNI firewall plugin rules\" -j CNI-FORWARD
-I CNI-FORWARD 1 -m comment --comment \"CNI firewall plugin admin overrides\" -j CNI-ADMIN
-A CNI-FORWARD -d 10.1.0.5/32 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment \"twill n/c/eth0\" -j ACCEPT
-A CNI-FORWARD -s 10.1.0.5/32 -m comment --comment \"twill n/c/eth0\" -j ACCEPT
COMMIT
"
        );
    }

    #[test]
    fn existing_chains_are_never_redeclared() {
        let ip: IpAddr = "fd00::5".parse().unwrap();
        let saved = format!(
            "{}:CNI-ADMIN - [0:0]\n:CNI-FORWARD - [0:0]\n-A FORWARD -m comment --comment \"CNI firewall plugin rules\" -j CNI-FORWARD\n-A CNI-FORWARD -m comment --comment \"CNI firewall plugin admin overrides\" -j CNI-ADMIN\n",
            EMPTY
        );
        let text = plan_add(&saved, "n/c/eth0", &[ip], "CNI-ADMIN");
        assert!(!text.contains(":CNI") && !text.contains("-I "), "{text}");
        assert!(text.contains("-A CNI-FORWARD -s fd00::5/128 -m comment"));
    }

    #[test]
    fn delete_picks_owner_and_reference_rules() {
        let ip: IpAddr = "10.1.0.5".parse().unwrap();
        let mine = pod_rules("n/c/eth0", &ip);
        let other = pod_rules("n/d/eth0", &"10.1.0.6".parse().unwrap());
        let theirs = reference_rules(&"10.1.0.7".parse().unwrap());
        let saved = [&mine[..], &other[..], &theirs[..]].concat().join("\n");
        let text =
            plan_delete(&saved, |l| owner_of(l) == Some("n/c/eth0") || theirs.contains(&l.to_string()))
                .unwrap();
        assert_eq!(text.matches("-D CNI-FORWARD").count(), 4, "{text}");
        assert!(!text.contains("10.1.0.6"));
        assert_eq!(plan_delete(&saved, |_| false), None);
        assert_eq!(owner_of(&other[1]), Some("n/d/eth0"));
    }
}
