//! The nftables backend: ONE shared `inet twill_firewall` table whose rules never change.
//! A pod is its addresses as set elements tagged with its owner, so ADD and DEL are one
//! atomic element update each. Isolated bridges are elements tagged `bridge NAME`: shared by
//! every pod on the bridge, they stay after DEL (as the reference's isolation rules do) and
//! GC drops them once the bridge is gone.
//!
//! The `admin` chain runs first and is never touched by twill: administrators' own rules go
//! there. An `accept` here ends evaluation of this table only; a drop in another table (an
//! iptables FORWARD policy of DROP, say) still applies — use the iptables backend there.

use cni_spec::{Attachment, Error};
use fw::{Batch, OwnedTable};

use super::conf::{FirewallPlan, IngressPolicy};
use crate::kernel::fw_error;
use crate::owner::is_stale;

const TABLE: &str = "twill_firewall";
const FAMILY: &str = "inet";

/// The fixed table. Isolation follows the reference: traffic coming from one isolated
/// bridge and leaving through another is dropped; with `isolated`, also traffic forwarded
/// from a bridge back into itself.
pub fn definition() -> String {
    format!(
        "table {FAMILY} {TABLE} {{
  set pods4 {{ type ipv4_addr; }}
  set pods6 {{ type ipv6_addr; }}
  set isolated {{ type ifname; }}
  set strict {{ type ifname; }}
  set same {{ type ifname . ifname; }}
  chain admin {{
  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
    jump admin
    iifname @isolated oifname @isolated iifname . oifname != @same drop
    iifname @strict oifname @strict iifname . oifname @same drop
    ip daddr @pods4 ct state established,related accept
    ip saddr @pods4 accept
    ip6 daddr @pods6 ct state established,related accept
    ip6 saddr @pods6 accept
  }}
}}"
    )
}

fn table() -> OwnedTable {
    OwnedTable { family: FAMILY, name: TABLE, definition: definition() }
}

/// The comment tagging a bridge's isolation elements.
fn bridge_tag(bridge: &str) -> String {
    format!("bridge {bridge}")
}

/// The element statements for one attachment.
pub fn elements(owner: &str, plan: &FirewallPlan, policy: IngressPolicy) -> Batch {
    let mut batch = Batch::new();
    for ip in &plan.ips {
        let set = if ip.is_ipv4() { "pods4" } else { "pods6" };
        batch.add(format!("add element {FAMILY} {TABLE} {set} {{ {ip} comment \"{owner}\" }}"));
    }
    if let Some(br) = &plan.bridge {
        let tag = bridge_tag(br);
        batch.add(format!("add element {FAMILY} {TABLE} isolated {{ \"{br}\" comment \"{tag}\" }}"));
        batch.add(format!("add element {FAMILY} {TABLE} same {{ \"{br}\" . \"{br}\" comment \"{tag}\" }}"));
        if policy == IngressPolicy::Isolated {
            batch.add(format!("add element {FAMILY} {TABLE} strict {{ \"{br}\" comment \"{tag}\" }}"));
        }
    }
    batch
}

pub fn setup(owner: &str, plan: &FirewallPlan, policy: IngressPolicy) -> Result<(), Error> {
    table().add(&elements(owner, plan, policy)).map_err(fw_error)
}

pub fn teardown(owner: &str) -> Result<(), Error> {
    table().remove_owner(owner).map(drop).map_err(fw_error)
}

/// Removes the addresses of stale attachments of `network`, and the isolation of bridges
/// for which `bridge_exists` says no.
pub fn gc(network: &str, valid: &[Attachment], bridge_exists: impl Fn(&str) -> bool) -> Result<(), Error> {
    let stale = |tag: &str| match tag.strip_prefix("bridge ") {
        Some(br) => !bridge_exists(br),
        None => is_stale(tag, network, valid),
    };
    table().remove_where(stale).map(drop).map_err(fw_error)
}

/// CHECK: every address (and the bridge's isolation) is in the table.
pub fn check(owner: &str, plan: &FirewallPlan, policy: IngressPolicy) -> Result<(), Error> {
    let listed = fw::set_elements(FAMILY, TABLE).map_err(fw_error)?;
    let elems: Vec<Listed> =
        listed.iter().map(|e| (e.set.as_str(), e.text.as_str(), e.comment.as_deref())).collect();
    if let Some(missing) = missing(&elems, owner, plan, policy) {
        return Err(Error::internal(format!("firewall: table {FAMILY} {TABLE} lacks {missing}")));
    }
    Ok(())
}

/// A listed element: set, text, comment.
type Listed<'a> = (&'a str, &'a str, Option<&'a str>);

/// The first element `elements` would add that is not there (pure).
fn missing(elems: &[Listed], owner: &str, plan: &FirewallPlan, policy: IngressPolicy) -> Option<String> {
    let has = |set: &str, text: &str, comment: &str| elems.contains(&(set, text, Some(comment)));
    for ip in &plan.ips {
        let set = if ip.is_ipv4() { "pods4" } else { "pods6" };
        if !has(set, &ip.to_string(), owner) {
            return Some(format!("{ip} of {owner} in set {set}"));
        }
    }
    let br = plan.bridge.as_deref()?;
    let tag = bridge_tag(br);
    let mut wanted = vec![("isolated", br.to_string()), ("same", format!("{br} . {br}"))];
    if policy == IngressPolicy::Isolated {
        wanted.push(("strict", br.to_string()));
    }
    wanted
        .into_iter()
        .find(|(set, text)| !has(set, text, &tag))
        .map(|(set, text)| format!("{text} in set {set}"))
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
            elements("n/c/eth0", &plan(Some("cni0")), IngressPolicy::Isolated).text(),
            "add element inet twill_firewall pods4 { 10.1.0.5 comment \"n/c/eth0\" }
add element inet twill_firewall pods6 { fd00::5 comment \"n/c/eth0\" }
add element inet twill_firewall isolated { \"cni0\" comment \"bridge cni0\" }
add element inet twill_firewall same { \"cni0\" . \"cni0\" comment \"bridge cni0\" }
add element inet twill_firewall strict { \"cni0\" comment \"bridge cni0\" }
"
        );
        let open = elements("n/c/eth0", &plan(None), IngressPolicy::Open).text();
        assert!(!open.contains("isolated") && !open.contains("strict"));
    }

    #[test]
    fn golden_table_keeps_isolation_before_the_accepts() {
        let def = definition();
        let drop_at = def.find("!= @same drop").unwrap();
        assert!(def.find("jump admin").unwrap() < drop_at);
        assert!(drop_at < def.find("ip daddr @pods4 ct state established,related accept").unwrap());
        assert!(def.contains("type filter hook forward priority filter; policy accept;"));
    }

    #[test]
    fn check_finds_what_is_missing() {
        let mut elems = vec![("pods4", "10.1.0.5", Some("o")), ("pods6", "fd00::5", Some("o"))];
        assert_eq!(missing(&elems, "o", &plan(None), IngressPolicy::Open), None);
        assert_eq!(
            missing(&elems, "o", &plan(Some("br")), IngressPolicy::SameBridge).as_deref(),
            Some("br in set isolated")
        );
        elems.push(("isolated", "br", Some("bridge br")));
        elems.push(("same", "br . br", Some("bridge br")));
        assert_eq!(missing(&elems, "o", &plan(Some("br")), IngressPolicy::SameBridge), None);
        assert_eq!(
            missing(&elems, "o", &plan(Some("br")), IngressPolicy::Isolated).as_deref(),
            Some("br in set strict")
        );
        assert_eq!(
            missing(&elems, "other", &plan(None), IngressPolicy::Open).as_deref(),
            Some("10.1.0.5 of other in set pods4")
        );
    }
}
