//! Turning compiled rulesets into nf_tables batches. Every batch is applied as ONE netlink
//! transaction (`fw::nft::Conn::apply`).

use std::collections::BTreeSet;

use fw::nft::{Batch, Elem};

use super::ruleset::{Ruleset, table_id};

/// Replaces whatever policy table there is with `rs`: `add table` (so that the delete cannot
/// fail on a node that has none), `delete table`, then the full table. The batch is one
/// transaction, so no packet ever sees an empty table — a default-deny pod is never open,
/// not even for the duration of an update.
pub fn apply_batch(rs: &Ruleset) -> Batch {
    let mut b = Batch::new();
    b.replace_table(rs);
    b
}

/// Removes the policy table: every pod becomes open.
pub fn delete_batch() -> Batch {
    let mut b = Batch::new();
    b.delete_table(&table_id());
    b
}

/// When `old` (what the node has) and `new` differ only in set and map elements — peers that
/// came or went, pods that were added elsewhere — the element deletions and additions that
/// turn one into the other: the cost of an update then follows what changed, not the size of
/// the ruleset. `None` when sets or chains differ: use [`apply_batch`].
pub fn update_batch(old: &Ruleset, new: &Ruleset) -> Option<Batch> {
    let shape = |rs: &Ruleset| rs.sets.iter().map(|s| s.decl()).collect::<Vec<_>>();
    if old.chains != new.chains || shape(old) != shape(new) || old.id() != new.id() {
        return None;
    }
    let mut deletes = Batch::new();
    let mut adds = Batch::new();
    for (o, n) in old.sets.iter().zip(&new.sets) {
        let (before, after): (BTreeSet<&Elem>, BTreeSet<&Elem>) =
            (o.elems.iter().collect(), n.elems.iter().collect());
        deletes.del_elems(&old.id(), o, before.difference(&after).map(|e| (*e).clone()).collect());
        adds.add_elems(&new.id(), n, after.difference(&before).map(|e| (*e).clone()).collect());
    }
    // Deletions first: a map key whose verdict changed, or an interval that grew into a
    // neighbour, is removed before its replacement is added.
    deletes.extend(adds);
    Some(deletes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fw::nft::{Chain, DataType, ElemData, KeyPart, Rule, Set, Table, Verdict};

    fn rs(peers: &[&str], dispatch: &[(&str, &str)]) -> Ruleset {
        let addr = |s: &str| KeyPart::addr(s.parse().unwrap());
        let mut t = Table::new(super::super::ruleset::FAMILY, super::super::ruleset::TABLE);
        t.sets.push(
            Set::new("p", &[DataType::Ipv4Addr])
                .intervals()
                .with_elems(peers.iter().map(|p| Elem::new(vec![addr(p)])).collect()),
        );
        let jump = |(ip, c): &(&str, &str)| {
            Elem::new(vec![addr(ip)]).mapped_to(ElemData::Verdict(Verdict::Jump(c.to_string())))
        };
        t.sets.push(
            Set::map("m", &[DataType::Ipv4Addr], &[DataType::Verdict])
                .with_elems(dispatch.iter().map(jump).collect()),
        );
        t.chains.push(Chain::new("a", vec![Rule::verdict(vec![], Verdict::Drop)]));
        t.chains.push(Chain::new("b", vec![Rule::verdict(vec![], Verdict::Drop)]));
        t
    }

    #[test]
    fn apply_replaces_the_table_in_one_batch() {
        let text = apply_batch(&rs(&["10.0.0.1"], &[])).text();
        assert!(
            text.starts_with(
                "add table inet twill_policy\ndelete table inet twill_policy\nadd table inet twill_policy\n"
            ),
            "{text}"
        );
        assert_eq!(delete_batch().text(), "add table inet twill_policy\ndelete table inet twill_policy\n");
    }

    #[test]
    fn element_changes_only() {
        let old = rs(&["10.0.0.1", "10.0.0.3"], &[("10.0.0.9", "a")]);
        let new = rs(&["10.0.0.1", "10.0.0.4"], &[("10.0.0.9", "b")]);
        let b = update_batch(&old, &new).unwrap();
        assert_eq!(
            b.text(),
            "delete element inet twill_policy p { 10.0.0.3 }\n\
             delete element inet twill_policy m { 10.0.0.9 }\n\
             add element inet twill_policy p { 10.0.0.4 }\n\
             add element inet twill_policy m { 10.0.0.9 : jump b }\n"
        );
        assert!(update_batch(&old, &old).unwrap().is_empty());
    }

    #[test]
    fn structural_changes_need_a_full_apply() {
        let old = rs(&[], &[]);
        let mut new = rs(&[], &[]);
        new.chains[0].rules.push(Rule::verdict(vec![], Verdict::Accept));
        assert!(update_batch(&old, &new).is_none());
        let mut new = rs(&[], &[]);
        new.sets[0].interval = false;
        assert!(update_batch(&old, &new).is_none());
    }
}
