//! Turning compiled rulesets into nft batches. Every batch is applied by ONE `nft -f -`
//! (`fw::apply`), which the kernel commits as one transaction.

use std::collections::BTreeSet;

use fw::Batch;

use super::ruleset::{FAMILY, Ruleset, Set, TABLE};

/// Replaces whatever policy table there is with `rs`: `add table` (so that the delete cannot
/// fail on a node that has none), `delete table`, then the full definition. The batch is one
/// transaction, so no packet ever sees an empty table — a default-deny pod is never open,
/// not even for the duration of an update.
pub fn apply_batch(rs: &Ruleset) -> Batch {
    let mut b = delete_batch();
    b.add(rs.text());
    b
}

/// Removes the policy table: every pod becomes open.
pub fn delete_batch() -> Batch {
    let mut b = Batch::new();
    b.add(format!("add table {FAMILY} {TABLE}")).add(format!("delete table {FAMILY} {TABLE}"));
    b
}

/// When `old` (what the node has) and `new` differ only in set and map elements — peers that
/// came or went, pods that were added elsewhere — the element deletions and additions that
/// turn one into the other: the cost of an update then follows what changed, not the size of
/// the ruleset. `None` when sets or chains differ: use [`apply_batch`].
pub fn update_batch(old: &Ruleset, new: &Ruleset) -> Option<Batch> {
    if old.chains != new.chains || !old.sets.iter().map(Set::shape).eq(new.sets.iter().map(Set::shape)) {
        return None;
    }
    let mut deletes = Batch::new();
    let mut adds = Batch::new();
    for (o, n) in old.sets.iter().zip(&new.sets) {
        let (before, after): (BTreeSet<&str>, BTreeSet<&str>) = (
            o.elements.iter().map(String::as_str).collect(),
            n.elements.iter().map(String::as_str).collect(),
        );
        let gone: Vec<&str> = before.difference(&after).map(|e| o.key_of(e)).collect();
        let came: Vec<&str> = after.difference(&before).copied().collect();
        if !gone.is_empty() {
            deletes.add(format!("delete element {FAMILY} {TABLE} {} {{ {} }}", o.name, gone.join(", ")));
        }
        if !came.is_empty() {
            adds.add(format!("add element {FAMILY} {TABLE} {} {{ {} }}", n.name, came.join(", ")));
        }
    }
    // Deletions first: a map key whose verdict changed, or an interval that grew into a
    // neighbour, is removed before its replacement is added.
    let mut b = Batch::new();
    for statement in deletes.text().lines().chain(adds.text().lines()).filter(|l| !l.is_empty()) {
        b.add(statement);
    }
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::ruleset::Chain;

    fn rs(peers: &[&str], dispatch: &[&str]) -> Ruleset {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Ruleset {
            sets: vec![
                Set::new("p".into(), "ipv4_addr", true, strings(peers)),
                Set::new("m".into(), "ipv4_addr : verdict", false, strings(dispatch)),
            ],
            chains: vec![Chain { name: "c".into(), hook: None, comment: None, rules: vec!["drop".into()] }],
        }
    }

    #[test]
    fn apply_replaces_the_table_in_one_batch() {
        let text = apply_batch(&rs(&["10.0.0.1"], &[])).text();
        assert!(text.starts_with(
            "add table inet twill_policy\ndelete table inet twill_policy\ntable inet twill_policy {\n"
        ));
    }

    #[test]
    fn element_changes_only() {
        let old = rs(&["10.0.0.1", "10.0.0.3"], &["10.0.0.9 : jump a"]);
        let new = rs(&["10.0.0.1", "10.0.0.4"], &["10.0.0.9 : jump b"]);
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
        new.chains[0].rules.push("accept".into());
        assert!(update_batch(&old, &new).is_none());
        let mut new = rs(&[], &[]);
        new.sets[0].interval = false;
        assert!(update_batch(&old, &new).is_none());
    }
}
