//! The nftables backend: ONE shared `inet twill_firewall` table whose rules never change.
//! A pod is its addresses as set elements tagged with its owner, so ADD and DEL are one
//! atomic element update each. Isolated bridges are elements tagged `bridge NAME`: shared by
//! every pod on the bridge, they stay after DEL (as the reference's isolation rules do) and
//! GC drops them once the bridge is gone.
//!
//! The `admin` chain runs first and is never touched by twill: administrators' own rules go
//! there. An `accept` here ends evaluation of this table only; a drop in another table (an
//! iptables FORWARD policy of DROP, say) still applies — use the iptables backend there.

use std::net::IpAddr;

use cni_spec::{Attachment, Error};
use fw::nft::owned::{apply_creating, deletions, find_owned, find_where};
use fw::nft::{
    Batch, Chain, ChainType, DataType, Elem, Family, Field, Hook, KeyPart, Match, Rule, Set, Table, Value,
    Verdict,
};

use super::conf::{FirewallPlan, IngressPolicy};
use crate::kernel::fw_error;
use crate::owner::is_stale;
use crate::podnft::with_conn;

const TABLE: &str = "twill_firewall";

/// The fixed table. Isolation follows the reference: traffic coming from one isolated
/// bridge and leaving through another is dropped; with `isolated`, also traffic forwarded
/// from a bridge back into itself.
pub fn table() -> Table {
    let mut t = Table::new(Family::Inet, TABLE);
    t.sets = vec![
        Set::new("pods4", &[DataType::Ipv4Addr]),
        Set::new("pods6", &[DataType::Ipv6Addr]),
        Set::new("isolated", &[DataType::Ifname]),
        Set::new("strict", &[DataType::Ifname]),
        Set::new("same", &[DataType::Ifname, DataType::Ifname]),
    ];
    let both = |set: &str| vec![Match::in_set(&[Field::Iifname], set), Match::in_set(&[Field::Oifname], set)];
    let pair = [Field::Iifname, Field::Oifname];
    let established = || Match::AnyOf { field: Field::CtState, bits: 2 | 4 };
    let rules = vec![
        Rule::verdict(vec![], Verdict::Jump("admin".into())),
        Rule::verdict([both("isolated"), vec![Match::not_in_set(&pair, "same")]].concat(), Verdict::Drop),
        Rule::verdict([both("strict"), vec![Match::in_set(&pair, "same")]].concat(), Verdict::Drop),
        Rule::verdict(vec![Match::in_set(&[Field::IpDaddr], "pods4"), established()], Verdict::Accept),
        Rule::verdict(vec![Match::in_set(&[Field::IpSaddr], "pods4")], Verdict::Accept),
        Rule::verdict(vec![Match::in_set(&[Field::Ip6Daddr], "pods6"), established()], Verdict::Accept),
        Rule::verdict(vec![Match::in_set(&[Field::Ip6Saddr], "pods6")], Verdict::Accept),
    ];
    t.chains.push(Chain::new("admin", vec![]));
    t.chains.push(Chain::hooked("forward", ChainType::Filter, Hook::Forward, 0, rules));
    t
}

/// The comment tagging a bridge's isolation elements.
fn bridge_tag(bridge: &str) -> String {
    format!("bridge {bridge}")
}

fn ip_elem(owner: &str, ip: IpAddr) -> (&'static str, Elem) {
    let set = if ip.is_ipv4() { "pods4" } else { "pods6" };
    (set, Elem::new(vec![KeyPart::addr(ip)]).with_comment(owner))
}

/// The elements of one attachment: set name and element.
pub fn elems(owner: &str, plan: &FirewallPlan, policy: IngressPolicy) -> Vec<(&'static str, Elem)> {
    let mut out: Vec<(&str, Elem)> = plan.ips.iter().map(|ip| ip_elem(owner, *ip)).collect();
    if let Some(br) = &plan.bridge {
        let name = || KeyPart::Exact(Value::Ifname(br.clone()));
        let tag = bridge_tag(br);
        out.push(("isolated", Elem::new(vec![name()]).with_comment(&tag)));
        out.push(("same", Elem::new(vec![name(), name()]).with_comment(&tag)));
        if policy == IngressPolicy::Isolated {
            out.push(("strict", Elem::new(vec![name()]).with_comment(&tag)));
        }
    }
    out
}

/// The batch adding the elements of one attachment.
pub fn add_batch(owner: &str, plan: &FirewallPlan, policy: IngressPolicy) -> Batch {
    let t = table();
    let all = elems(owner, plan, policy);
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

pub fn setup(owner: &str, plan: &FirewallPlan, policy: IngressPolicy) -> Result<(), Error> {
    let t = table();
    with_conn(|conn| apply_creating(conn, &add_batch(owner, plan, policy), &[&t]).map_err(fw_error))
}

/// Removes the attachment's addresses: those of `prev_ips` when prevResult gave them (read
/// back by key), else whatever carries its tag.
pub fn teardown(owner: &str, prev_ips: Option<&[IpAddr]>) -> Result<(), Error> {
    let t = table();
    with_conn(|conn| {
        let found = match prev_ips {
            Some(ips) => {
                let keys: Vec<(&str, Elem)> = ips.iter().map(|ip| ip_elem(owner, *ip)).collect();
                find_owned(conn, &t, &keys, owner)
            }
            None => find_where(conn, &t.id(), |o| o == owner),
        };
        conn.apply(&deletions(&t.id(), &found.map_err(fw_error)?)).map_err(fw_error)
    })
}

/// Removes the addresses of stale attachments of `network`, and the isolation of bridges
/// for which `bridge_exists` says no.
pub fn gc(network: &str, valid: &[Attachment], bridge_exists: impl Fn(&str) -> bool) -> Result<(), Error> {
    let stale = |tag: &str| match tag.strip_prefix("bridge ") {
        Some(br) => !bridge_exists(br),
        None => is_stale(tag, network, valid),
    };
    let t = table();
    with_conn(|conn| {
        let found = find_where(conn, &t.id(), stale).map_err(fw_error)?;
        conn.apply(&deletions(&t.id(), &found)).map_err(fw_error)
    })
}

/// CHECK: every address (and the bridge's isolation) is in the table, read back by key.
pub fn check(owner: &str, plan: &FirewallPlan, policy: IngressPolicy) -> Result<(), Error> {
    let t = table();
    let wanted = elems(owner, plan, policy);
    with_conn(|conn| {
        for (set, want) in &wanted {
            let Some(decl) = t.set(set) else { continue };
            let got = conn.get_elems(&t.id(), decl, std::slice::from_ref(want)).map_err(fw_error)?;
            if got.first().and_then(|g| g.as_ref()).and_then(|g| g.comment.as_deref())
                != want.comment.as_deref()
            {
                return Err(Error::internal(format!(
                    "firewall: table inet {TABLE} lacks {}",
                    describe(set, want)
                )));
            }
        }
        Ok(())
    })
}

/// `10.1.0.5 of n/c/eth0 in set pods4`, `cni0 in set isolated`.
fn describe(set: &str, e: &Elem) -> String {
    let key: Vec<String> =
        e.key.iter().map(|p| fw::nft::text::key_part_text(p).trim_matches('"').to_string()).collect();
    match set {
        "pods4" | "pods6" => {
            format!("{} of {} in set {set}", key.join(" . "), e.comment.as_deref().unwrap_or_default())
        }
        _ => format!("{} in set {set}", key.join(" . ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(bridge: Option<&str>) -> FirewallPlan {
        FirewallPlan {
            ips: vec!["10.1.0.5".parse().unwrap(), "fd00::5".parse().unwrap()],
            bridge: bridge.map(str::to_string),
        }
    }

    #[test]
    fn golden_elements() {
        assert_eq!(
            add_batch("n/c/eth0", &plan(Some("cni0")), IngressPolicy::Isolated).text(),
            "add element inet twill_firewall pods4 { 10.1.0.5 comment \"n/c/eth0\" }
add element inet twill_firewall pods6 { fd00::5 comment \"n/c/eth0\" }
add element inet twill_firewall isolated { \"cni0\" comment \"bridge cni0\" }
add element inet twill_firewall strict { \"cni0\" comment \"bridge cni0\" }
add element inet twill_firewall same { \"cni0\" . \"cni0\" comment \"bridge cni0\" }
"
        );
        let open = add_batch("n/c/eth0", &plan(None), IngressPolicy::Open).text();
        assert!(!open.contains("isolated") && !open.contains("strict"));
    }

    #[test]
    fn golden_table_keeps_isolation_before_the_accepts() {
        let def = table().text();
        let drop_at = def.find("!= @same drop").unwrap();
        assert!(def.find("jump admin").unwrap() < drop_at);
        assert!(drop_at < def.find("ip daddr @pods4 ct state established,related accept").unwrap());
        assert!(def.contains("type filter hook forward priority filter; policy accept;"));
    }

    #[test]
    fn missing_elements_are_described() {
        let all = elems("o", &plan(Some("br")), IngressPolicy::Isolated);
        let text: Vec<String> = all.iter().map(|(s, e)| describe(s, e)).collect();
        assert_eq!(
            text,
            [
                "10.1.0.5 of o in set pods4",
                "fd00::5 of o in set pods6",
                "br in set isolated",
                "br . br in set same",
                "br in set strict"
            ]
        );
    }
}
