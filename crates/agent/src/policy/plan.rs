//! What to do with `table inet twill_policy`, decided from what this agent last applied,
//! what the kernel has now, and what the cluster wants. Pure, so every case is a unit test:
//!
//! - the kernel table is exactly what was applied last: nothing when nothing changed,
//!   element deletions and additions (`update_batch`) when only elements changed, else an
//!   atomic replacement (`apply_batch`);
//! - anything else (first pass after a start, someone deleted or edited the table, the last
//!   apply failed half-way): an atomic replacement, counted as a repair when the table had
//!   been in place;
//! - no local pod is isolated: no table at all, so nodes without policies carry no rules.
//!
//! Every batch is one nft transaction; a replacement is `add`+`delete`+definition, so a
//! default-deny pod is never open, not even between two rulesets.

use fw::nft::Batch;
use policy::{Ruleset, apply_batch, delete_batch, update_batch};

/// What this agent knows about the table in the kernel.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Known {
    /// Nothing yet (just started) or the last apply failed: whatever is there is suspect.
    #[default]
    Unknown,
    /// The agent removed it (or found none to remove).
    Absent,
    /// The agent applied `ruleset`, and the kernel's table had the fingerprint `listing`
    /// right after (counters left out, so traffic does not look like drift).
    Present { ruleset: Ruleset, listing: u64 },
}

/// One kernel change (or none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Keep,
    /// Element deletions and additions only.
    Update(Batch),
    /// The whole table, replaced atomically.
    Replace(Batch),
    /// The table removed: no local pod is isolated.
    Remove(Batch),
}

impl Action {
    /// `kept`, `updated`, `replaced`, `removed`: for logs and metric labels.
    pub fn verb(&self) -> &'static str {
        match self {
            Action::Keep => "kept",
            Action::Update(_) => "updated",
            Action::Replace(_) => "replaced",
            Action::Remove(_) => "removed",
        }
    }
}

/// The decision, and whether it puts back something that drifted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePlan {
    pub action: Action,
    pub repair: bool,
}

/// The ruleset a node needs, or `None` when no local pod is isolated (compile's output then
/// holds only base chains and empty maps, which would filter nothing) and no flow of a local
/// pod is to be logged (`--flow-logs all` fills the `local` sets).
pub fn wanted(rs: Ruleset) -> Option<Ruleset> {
    let isolating = rs.chains.iter().any(|c| c.base.is_none());
    let logging = rs.sets.iter().any(|s| s.name.starts_with("local") && !s.elems.is_empty());
    (isolating || logging).then_some(rs)
}

/// Decides the next step. `live` is the fingerprint of the kernel's table now (`None`: no
/// table).
pub fn plan_table(known: &Known, live: Option<u64>, want: Option<&Ruleset>) -> TablePlan {
    let keep = TablePlan { action: Action::Keep, repair: false };
    match (known, want) {
        (Known::Present { ruleset, listing }, Some(want)) if live == Some(*listing) => {
            if ruleset == want {
                return keep;
            }
            let action = match update_batch(ruleset, want) {
                Some(batch) => Action::Update(batch),
                None => Action::Replace(apply_batch(want)),
            };
            TablePlan { action, repair: false }
        }
        (known, Some(want)) => {
            let drifted = matches!(known, Known::Present { listing, .. } if live != Some(*listing));
            TablePlan { action: Action::Replace(apply_batch(want)), repair: drifted }
        }
        (_, None) if live.is_none() => keep,
        (known, None) => {
            // A table this agent did not leave there: a stale one from before a restart, or
            // one someone recreated.
            let repair = matches!(known, Known::Absent);
            TablePlan { action: Action::Remove(delete_batch()), repair }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fw::nft::{Chain, ChainType, DataType, Elem, Hook, KeyPart, Rule, Set, Verdict};

    fn rs(peers: &[&str], group: &str) -> Ruleset {
        let elems = peers.iter().map(|p| Elem::new(vec![KeyPart::addr(p.parse().unwrap())])).collect();
        let mut t = Ruleset::new(policy::FAMILY, policy::TABLE);
        t.sets.push(Set::new("p", &[DataType::Ipv4Addr]).intervals().with_elems(elems));
        t.chains.push(Chain::hooked("forward_ingress", ChainType::Filter, Hook::Forward, 0, vec![]));
        t.chains.push(Chain::new(group, vec![Rule::verdict(vec![], Verdict::Drop)]));
        t
    }

    fn present(r: &Ruleset) -> Known {
        Known::Present { ruleset: r.clone(), listing: 1 }
    }

    #[test]
    fn unchanged_in_sync_table_is_kept() {
        let r = rs(&["10.0.0.1"], "g");
        let plan = plan_table(&present(&r), Some(1), Some(&r));
        assert_eq!(plan, TablePlan { action: Action::Keep, repair: false });
    }

    #[test]
    fn element_changes_are_updates_and_shape_changes_replacements() {
        let old = rs(&["10.0.0.1"], "g");
        let plan = plan_table(&present(&old), Some(1), Some(&rs(&["10.0.0.2"], "g")));
        let Action::Update(b) = plan.action else { panic!("{plan:?}") };
        assert_eq!(
            b.text(),
            "delete element inet twill_policy p { 10.0.0.1 }\nadd element inet twill_policy p { 10.0.0.2 }\n"
        );
        let plan = plan_table(&present(&old), Some(1), Some(&rs(&["10.0.0.1"], "h")));
        assert!(matches!(plan.action, Action::Replace(_)) && !plan.repair, "{plan:?}");
    }

    #[test]
    fn drift_is_replaced_and_counted_as_repair() {
        let r = rs(&["10.0.0.1"], "g");
        for live in [None, Some(2)] {
            let plan = plan_table(&present(&r), live, Some(&r));
            let Action::Replace(b) = &plan.action else { panic!("{plan:?}") };
            assert!(b.text().starts_with("add table inet twill_policy\ndelete table inet twill_policy\n"));
            assert!(plan.repair);
        }
        // After a start the agent replaces whatever is there, which is no repair.
        let plan = plan_table(&Known::Unknown, Some(7), Some(&r));
        assert!(matches!(plan.action, Action::Replace(_)) && !plan.repair);
    }

    #[test]
    fn no_isolated_pod_means_no_table() {
        assert_eq!(plan_table(&Known::Unknown, None, None).action, Action::Keep);
        let r = rs(&[], "g");
        let plan = plan_table(&present(&r), Some(1), None);
        assert_eq!(plan, TablePlan { action: Action::Remove(delete_batch()), repair: false });
        let plan = plan_table(&Known::Absent, Some(3), None);
        assert!(plan.repair);
    }

    #[test]
    fn only_group_chains_make_a_table_wanted() {
        let mut r = rs(&[], "g");
        assert!(wanted(r.clone()).is_some());
        r.chains.pop();
        assert_eq!(wanted(r), None);
    }
}
