//! The iptables backend, for conflists that ask for it (or carry iptables-only options):
//! the reference's structure in the nat table, written with one `iptables-restore --noflush`
//! per family and change. Shared chains `TWILL-HOSTPORT-DNAT` (entered from PREROUTING and
//! OUTPUT for local destinations) and, per mark bit, `TWILL-HP-SETMARK-<bit>` /
//! `TWILL-HP-MASQ-<bit>`; a chain `TWILL-DN-<hash of owner>` per pod. Rules grow with pods
//! here: use the nftables backend where that matters.

use cni_spec::{Attachment, Error};
use fw::iptables::{self, has_chain, remove_chain};
use ipnet::IpNet;

use super::conf::{Mapping, PortmapConf};
use crate::kernel::{fw_locked, iptables_error};
use crate::owner::is_stale;

const DNAT_CHAIN: &str = "TWILL-HOSTPORT-DNAT";
const COMMENT: &str = "twill-portmap";

/// The per-pod chain; iptables chain names stay under 29 characters.
pub fn pod_chain(owner: &str) -> String {
    fw::stable_name("TWILL-DN-", owner)
}

fn setmark_chain(conf: &PortmapConf) -> String {
    conf.external_set_mark_chain.clone().unwrap_or_else(|| format!("TWILL-HP-SETMARK-{}", conf.mark_bit))
}

/// The shared chains `conf` needs, as restore lines, leaving out those in `saved`.
pub fn shared_rules(conf: &PortmapConf, saved: &str) -> String {
    let has = |chain: &str| has_chain(saved, chain);
    let mut text = String::new();
    if !has(DNAT_CHAIN) {
        text += &format!(":{DNAT_CHAIN} - [0:0]\n");
        for hook in ["PREROUTING", "OUTPUT"] {
            text += &format!("-A {hook} -m addrtype --dst-type LOCAL -j {DNAT_CHAIN}\n");
        }
    }
    if conf.snat && conf.external_set_mark_chain.is_none() && !has(&setmark_chain(conf)) {
        let mark = format!("{:#x}/{:#x}", 1u32 << conf.mark_bit, 1u32 << conf.mark_bit);
        let (set, masq) = (setmark_chain(conf), format!("TWILL-HP-MASQ-{}", conf.mark_bit));
        text += &format!(":{set} - [0:0]\n-A {set} -j MARK --set-xmark {mark}\n");
        // First in POSTROUTING: after another plugin's masquerade rules it might never run.
        text += &format!(":{masq} - [0:0]\n-I POSTROUTING 1 -j {masq}\n");
        text += &format!("-A {masq} -m mark --mark {mark} -j MASQUERADE\n");
    }
    text
}

/// The pod's chain and its entry rules for the family of `pod`.
pub fn pod_rules(conf: &PortmapConf, owner: &str, pod: IpNet) -> String {
    let v6 = pod.addr().is_ipv6();
    let chain = pod_chain(owner);
    let maps: Vec<&Mapping> = conf.mappings.iter().filter(|m| m.applies_to(v6)).collect();
    let mut text = format!(":{chain} - [0:0]\n");
    let target =
        |port: u16| if v6 { format!("[{}]:{port}", pod.addr()) } else { format!("{}:{port}", pod.addr()) };
    for m in &maps {
        let dst = m.dst().map(|ip| format!(" -d {ip}")).unwrap_or_default();
        let base = format!("-A {chain} -p {} --dport {}{dst}", m.protocol.name(), m.host_port);
        if conf.snat {
            let any = if v6 { "::/0" } else { "0.0.0.0/0" };
            let hairpin = if conf.masq_all { any.to_string() } else { pod.trunc().to_string() };
            text += &format!("{base} -s {hairpin} -j {}\n", setmark_chain(conf));
            if !v6 && !conf.masq_all {
                text += &format!("{base} -s 127.0.0.0/8 -j {}\n", setmark_chain(conf));
            }
        }
        text += &format!("{base} -j DNAT --to-destination {}\n", target(m.container_port));
    }
    let conditions = conf.conditions(v6).join(" ");
    let conditions = if conditions.is_empty() { conditions } else { format!(" {conditions}") };
    let mut protos: Vec<_> = maps.iter().map(|m| m.protocol).collect();
    protos.sort();
    protos.dedup();
    for proto in protos {
        let ports: Vec<String> =
            maps.iter().filter(|m| m.protocol == proto).map(|m| m.host_port.to_string()).collect();
        // multiport takes at most 15 ports per rule.
        for chunk in ports.chunks(15) {
            text += &format!(
                "-A {DNAT_CHAIN} -p {} -m multiport --dports {}{conditions} -m comment --comment \"{COMMENT} {owner}\" -j {chain}\n",
                proto.name(),
                chunk.join(",")
            );
        }
    }
    text
}

/// Installs the pod's rules for each address, replacing any earlier ones of the same owner.
pub fn setup(conf: &PortmapConf, owner: &str, pods: &[IpNet]) -> Result<(), Error> {
    for pod in pods {
        let v6 = pod.addr().is_ipv6();
        fw_locked(|| {
            let shared = shared_rules(conf, &save(v6)?);
            if !shared.is_empty() {
                restore(v6, &format!("*nat\n{shared}COMMIT\n"))?;
            }
            Ok(())
        })?;
        teardown_family(owner, v6)?;
        restore(v6, &format!("*nat\n{}COMMIT\n", pod_rules(conf, owner, *pod)))?;
    }
    Ok(())
}

/// CHECK: the pod's chain holds a DNAT rule per mapping and is entered from the shared chain.
pub fn check(conf: &PortmapConf, owner: &str, pods: &[IpNet]) -> Result<(), Error> {
    let chain = pod_chain(owner);
    for pod in pods {
        let v6 = pod.addr().is_ipv6();
        let saved = save(v6)?;
        let want = conf.mappings.iter().filter(|m| m.applies_to(v6)).count();
        let dnats = saved
            .lines()
            .filter(|l| l.starts_with(&format!("-A {chain} ")) && l.contains(" -j DNAT "))
            .count();
        let entered = saved
            .lines()
            .any(|l| l.starts_with(&format!("-A {DNAT_CHAIN} ")) && l.ends_with(&format!("-j {chain}")));
        if dnats < want || !entered {
            return Err(Error::internal(format!(
                "{} rules of {owner} are missing from chain {chain}",
                if v6 { "ip6tables" } else { "iptables" }
            )));
        }
    }
    Ok(())
}

/// Removes the pod's chain and entry rules in both families; nothing there is fine.
pub fn teardown(owner: &str) -> Result<(), Error> {
    let mut first = None;
    for v6 in [false, true] {
        if let Err(e) = teardown_family(owner, v6) {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

fn teardown_family(owner: &str, v6: bool) -> Result<(), Error> {
    match remove_chain("nat", &save(v6)?, &pod_chain(owner)) {
        Some(text) => restore(v6, &text),
        None => Ok(()),
    }
}

/// GC: tears down every owner of `network` not in `valid`.
pub fn gc(network: &str, valid: &[Attachment]) -> Result<(), Error> {
    let owners = iptables::owners_in("nat", COMMENT).map_err(iptables_error)?;
    owners.iter().filter(|o| is_stale(o, network, valid)).try_for_each(|o| teardown(o))
}

fn save(v6: bool) -> Result<String, Error> {
    iptables::save(v6, "nat").map_err(iptables_error)
}

fn restore(v6: bool, text: &str) -> Result<(), Error> {
    iptables::restore(v6, text).map_err(iptables_error)
}

#[cfg(test)]
#[path = "ipt_tests.rs"]
mod tests;
