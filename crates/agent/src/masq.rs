//! Masquerade for traffic leaving the cluster, in the node's namespace: one nftables table
//! `inet twill_agent` whose postrouting chain rewrites the source of packets from pod
//! addresses to anything outside the cluster CIDR. Pod-to-pod traffic (also across nodes)
//! keeps its addresses. The table is replaced whole in one transaction, and put back when
//! anyone changed or deleted it (flannel#869-style drift).

use ipnet::IpNet;

use fw::{Batch, Error, apply, list_json};

pub const FAMILY: &str = "inet";
pub const TABLE: &str = "twill_agent";

/// The batch that (re)creates the table: `add` + `delete` + definition in one transaction
/// replaces it atomically whether or not it existed.
pub fn build_masquerade(cluster: IpNet, cluster6: Option<IpNet>) -> Batch {
    let mut rules = Vec::new();
    for net in [Some(cluster), cluster6].into_iter().flatten() {
        let (ip, multicast) = if net.addr().is_ipv4() { ("ip", "224.0.0.0/4") } else { ("ip6", "ff00::/8") };
        rules.push(format!("        {ip} saddr {net} {ip} daddr != {{ {net}, {multicast} }} masquerade"));
    }
    let mut b = Batch::new();
    b.add(format!("add table {FAMILY} {TABLE}"));
    b.add(format!("delete table {FAMILY} {TABLE}"));
    b.add(format!(
        "table {FAMILY} {TABLE} {{\n    chain postrouting {{\n        \
         type nat hook postrouting priority srcnat; policy accept;\n{}\n    }}\n}}",
        rules.join("\n")
    ));
    b
}

/// The masquerade table of this node, and what it looked like when last applied.
#[derive(Debug)]
pub struct Masquerade {
    /// `None`: no masquerade (`--masquerade false`, the network routes the pod subnets).
    batch: Option<Batch>,
    applied: Option<serde_json::Value>,
}

impl Masquerade {
    pub fn new(cluster: IpNet, cluster6: Option<IpNet>) -> Masquerade {
        Masquerade { batch: Some(build_masquerade(cluster, cluster6)), applied: None }
    }

    /// A node that does not masquerade: `ensure` removes a table left by an earlier run.
    pub fn disabled() -> Masquerade {
        Masquerade { batch: None, applied: None }
    }

    /// Applies the table unless it is exactly as this process left it; true when it was
    /// (re)applied (or, disabled, removed).
    pub fn ensure(&mut self) -> Result<bool, Error> {
        let now = list_json(&["table", FAMILY, TABLE]).ok();
        let Some(batch) = &self.batch else {
            if now.is_some() {
                Masquerade::remove()?;
            }
            return Ok(now.is_some());
        };
        if now.is_some() && now == self.applied {
            return Ok(false);
        }
        apply(batch)?;
        self.applied = Some(list_json(&["table", FAMILY, TABLE])?);
        Ok(true)
    }

    /// Deletes the table (best-effort teardown for tests and tools).
    pub fn remove() -> Result<(), Error> {
        let mut b = Batch::new();
        b.add(format!("add table {FAMILY} {TABLE}"));
        b.add(format!("delete table {FAMILY} {TABLE}"));
        apply(&b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dual_stack_ruleset() {
        let b = build_masquerade("10.244.0.0/16".parse().unwrap(), Some("fd00:10:244::/56".parse().unwrap()));
        assert_eq!(
            b.text(),
            "add table inet twill_agent\n\
             delete table inet twill_agent\n\
             table inet twill_agent {\n    \
                 chain postrouting {\n        \
                     type nat hook postrouting priority srcnat; policy accept;\n        \
                     ip saddr 10.244.0.0/16 ip daddr != { 10.244.0.0/16, 224.0.0.0/4 } masquerade\n        \
                     ip6 saddr fd00:10:244::/56 ip6 daddr != { fd00:10:244::/56, ff00::/8 } masquerade\n    \
                 }\n\
             }\n"
        );
    }

    #[test]
    fn ipv4_only_has_one_rule() {
        let b = build_masquerade("10.244.0.0/16".parse().unwrap(), None);
        assert_eq!(b.text().matches("masquerade").count(), 1);
        assert!(!b.text().contains("ip6"));
    }
}
