//! Masquerade for traffic leaving the cluster, in the node's namespace: one nftables table
//! `inet twill_agent` whose postrouting chain rewrites the source of packets from pod
//! addresses to anything outside the cluster CIDR. Pod-to-pod traffic (also across nodes)
//! keeps its addresses. The table is replaced whole in one netlink transaction, and put back
//! when anyone changed or deleted it (flannel#869-style drift), which a fingerprint of the
//! table (counters aside) tells without listing it as text.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use fw::nft::{
    Batch, Chain, ChainType, Conn, Error, Family, Field, Hook, KeyPart, Match, Operand, Rule, Stmt, Table,
    TableId,
};
use ipnet::IpNet;

pub const FAMILY: Family = Family::Inet;
pub const TABLE: &str = "twill_agent";

/// The table: `ip saddr CLUSTER ip daddr != { CLUSTER, 224.0.0.0/4 } masquerade`, per family.
pub fn build_masquerade(cluster: IpNet, cluster6: Option<IpNet>) -> Table {
    let mut rules = Vec::new();
    for net in [Some(cluster), cluster6].into_iter().flatten() {
        let (saddr, daddr, multicast) = match net.addr() {
            IpAddr::V4(_) => {
                (Field::IpSaddr, Field::IpDaddr, IpNet::new_assert(Ipv4Addr::new(224, 0, 0, 0).into(), 4))
            }
            IpAddr::V6(_) => (
                Field::Ip6Saddr,
                Field::Ip6Daddr,
                IpNet::new_assert(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0).into(), 8),
            ),
        };
        let from = Match::Is { field: saddr, negate: false, operand: Operand::Prefix(net.trunc()) };
        let outside = Match::OneOf {
            field: daddr,
            negate: true,
            values: vec![KeyPart::net(net.trunc()), KeyPart::net(multicast)],
        };
        rules.push(Rule::new(vec![from, outside], vec![Stmt::Masquerade]));
    }
    let mut t = Table::new(FAMILY, TABLE);
    t.chains.push(Chain::hooked("postrouting", ChainType::Nat, Hook::Postrouting, 100, rules));
    t
}

/// The masquerade table of this node, and its fingerprint when last applied.
#[derive(Debug)]
pub struct Masquerade {
    /// `None`: no masquerade (`--masquerade false`, the network routes the pod subnets).
    table: Option<Table>,
    applied: Option<u64>,
}

impl Masquerade {
    pub fn new(cluster: IpNet, cluster6: Option<IpNet>) -> Masquerade {
        Masquerade { table: Some(build_masquerade(cluster, cluster6)), applied: None }
    }

    /// A node that does not masquerade: `ensure` removes a table left by an earlier run.
    pub fn disabled() -> Masquerade {
        Masquerade { table: None, applied: None }
    }

    /// Applies the table unless it is exactly as this process left it; true when it was
    /// (re)applied (or, disabled, removed).
    pub fn ensure(&mut self) -> Result<bool, Error> {
        let mut conn = Conn::open()?;
        let id = TableId::new(FAMILY, TABLE);
        let now = conn.fingerprint(&id)?;
        let Some(table) = &self.table else {
            if now.is_some() {
                Masquerade::remove()?;
            }
            return Ok(now.is_some());
        };
        if now.is_some() && now == self.applied {
            return Ok(false);
        }
        let mut batch = Batch::new();
        batch.replace_table(table);
        conn.apply(&batch)?;
        self.applied = conn.fingerprint(&id)?;
        Ok(true)
    }

    /// Deletes the table (best-effort teardown for tests and tools).
    pub fn remove() -> Result<(), Error> {
        let mut batch = Batch::new();
        batch.delete_table(&TableId::new(FAMILY, TABLE));
        Conn::open()?.apply(&batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dual_stack_ruleset() {
        let t = build_masquerade("10.244.0.0/16".parse().unwrap(), Some("fd00:10:244::/56".parse().unwrap()));
        assert_eq!(
            t.text(),
            "table inet twill_agent {\n\
             \tchain postrouting {\n\
             \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
             \t\tip saddr 10.244.0.0/16 ip daddr != { 10.244.0.0/16, 224.0.0.0/4 } masquerade\n\
             \t\tip6 saddr fd00:10:244::/56 ip6 daddr != { fd00:10:244::/56, ff00::/8 } masquerade\n\
             \t}\n\
             }\n"
        );
    }

    #[test]
    fn ipv4_only_has_one_rule() {
        let t = build_masquerade("10.244.0.0/16".parse().unwrap(), None);
        assert_eq!(t.rule_count(), 1);
        assert!(!t.text().contains("ip6"));
    }
}
