//! Tables whose rules never change and whose per-pod state is owner-tagged set elements: the
//! shape every twill plugin uses for nftables, so a pod costs one element update.

use std::path::Path;

use crate::{Batch, Element, Error, apply, list_json, owned_elements, set_elements};

/// Where concurrent plugin runs serialise the one-time creation of a table.
pub const LOCK: &str = "/run/twill/nft.lock";

/// A table defined once and filled with owner-tagged elements.
#[derive(Clone, Debug)]
pub struct OwnedTable {
    pub family: &'static str,
    pub name: &'static str,
    /// The full `table FAMILY NAME { ... }` definition.
    pub definition: String,
}

impl OwnedTable {
    /// Applies `elements` (one transaction); when the table is missing — first pod on the
    /// node, or someone deleted it — creates it under a lock and applies again.
    pub fn add(&self, elements: &Batch) -> Result<(), Error> {
        match apply(elements) {
            Err(e) if e.is_missing() => {
                self.ensure()?;
                apply(elements)
            }
            other => other,
        }
    }

    /// Creates the table unless it exists; concurrent callers never duplicate its rules.
    pub fn ensure(&self) -> Result<(), Error> {
        with_lock_result(Path::new(LOCK), || {
            if list_json(&["table", self.family, self.name]).is_ok() {
                return Ok(());
            }
            let mut create = Batch::new();
            create.add(self.definition.as_str());
            apply(&create)
        })
    }

    /// Deletes every element tagged `owner`, in one transaction; returns how many.
    pub fn remove_owner(&self, owner: &str) -> Result<usize, Error> {
        self.remove(owned_elements(self.family, self.name, owner)?)
    }

    /// Deletes every tagged element whose owner `stale` says must go (GC), in one
    /// transaction; returns how many.
    pub fn remove_where(&self, stale: impl Fn(&str) -> bool) -> Result<usize, Error> {
        let all = set_elements(self.family, self.name)?;
        self.remove(all.into_iter().filter(|e| e.comment.as_deref().is_some_and(&stale)).collect())
    }

    fn remove(&self, owned: Vec<Element>) -> Result<usize, Error> {
        let mut batch = Batch::new();
        for el in &owned {
            batch.add(format!("delete element {} {} {} {{ {} }}", self.family, self.name, el.set, el.text));
        }
        apply(&batch)?;
        Ok(owned.len())
    }
}

fn with_lock_result(path: &Path, f: impl FnOnce() -> Result<(), Error>) -> Result<(), Error> {
    crate::with_lock(path, f)?
}
