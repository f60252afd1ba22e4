//! Tables whose rules never change and whose per-pod state is owner-tagged elements (the
//! shape of every twill plugin table, ADR 0003): a pod costs one element batch on ADD and
//! one on DEL. DEL finds the pod's elements by the keys it knows (its addresses from
//! prevResult, its port mappings), reading back only those keys to keep elements another
//! attachment holds; GC, which knows no keys, reads the table's sets.

use std::path::Path;

use super::batch::Batch;
use super::conn::{Conn, Error};
use super::table::{Elem, Set, Table, TableId};

/// Where concurrent plugin runs serialise the one-time creation of tables.
pub const LOCK: &str = "/run/twill/nft.lock";

/// An element of a table's set, and the set's declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub set: Set,
    pub elem: Elem,
}

/// Applies `batch`; when a table or set is missing (the first pod on the node, or someone
/// deleted a table), creates the missing ones of `tables` under the lock and applies again.
pub fn apply_creating(conn: &mut Conn, batch: &Batch, tables: &[&Table]) -> Result<(), Error> {
    match conn.apply(batch) {
        Err(e) if e.is_missing() && !tables.is_empty() => {
            ensure(conn, tables)?;
            conn.apply(batch)
        }
        other => other,
    }
}

/// Creates each of `tables` unless it exists, in one batch under the lock, so concurrent
/// first pods never duplicate a table's rules.
pub fn ensure(conn: &mut Conn, tables: &[&Table]) -> Result<(), Error> {
    with_lock(Path::new(LOCK), || {
        let mut batch = Batch::new();
        for t in tables {
            if !conn.has_table(&t.id())? {
                batch.add_table(t);
            }
        }
        conn.apply(&batch)
    })?
}

/// The elements among `keys` (set name and key) that `owner` holds in `table`, read back by
/// key; keys nobody or somebody else holds are left out. A missing table holds none.
pub fn find_owned(
    conn: &mut Conn,
    table: &Table,
    keys: &[(&str, Elem)],
    owner: &str,
) -> Result<Vec<Found>, Error> {
    let mut out = Vec::new();
    for set in &table.sets {
        let wanted: Vec<Elem> =
            keys.iter().filter(|(s, _)| *s == set.name).map(|(_, e)| e.key_only()).collect();
        for elem in conn.get_elems(&table.id(), set, &wanted)?.into_iter().flatten() {
            if elem.comment.as_deref() == Some(owner) {
                out.push(Found { set: set.decl(), elem });
            }
        }
    }
    Ok(out)
}

/// Every element of table `id` whose comment `doomed` selects (GC; DEL without prevResult),
/// in whatever sets the kernel has for it: also those of an older table layout.
pub fn find_where(conn: &mut Conn, id: &TableId, doomed: impl Fn(&str) -> bool) -> Result<Vec<Found>, Error> {
    let mut out = Vec::new();
    for set in conn.sets(id)? {
        for elem in conn.elems(id, &set)? {
            if elem.comment.as_deref().is_some_and(&doomed) {
                out.push(Found { set: set.clone(), elem });
            }
        }
    }
    Ok(out)
}

/// The batch deleting `found` from table `id`, one change per set.
pub fn deletions(id: &TableId, found: &[Found]) -> Batch {
    let mut batch = Batch::new();
    let mut done: Vec<&str> = Vec::new();
    for set in found.iter().map(|f| &f.set) {
        if done.contains(&set.name.as_str()) {
            continue;
        }
        done.push(&set.name);
        let elems: Vec<Elem> =
            found.iter().filter(|f| f.set.name == set.name).map(|f| f.elem.clone()).collect();
        batch.del_elems(id, set, elems);
    }
    batch
}

/// Runs `f` holding an exclusive flock on `path` (created if needed): for the rare
/// check-then-create steps that must not race between concurrent plugin runs.
pub fn with_lock<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T, Error> {
    let lock_err = |source| Error::Lock { path: path.display().to_string(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(lock_err)?;
    }
    let file =
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(lock_err)?;
    file.lock().map_err(lock_err)?;
    let out = f();
    drop(file);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::table::{KeyPart, Set};
    use crate::nft::types::{DataType, Family};

    #[test]
    fn deletions_group_by_set() {
        let mut t = Table::new(Family::Inet, "t");
        t.sets.push(Set::new("a", &[DataType::Ipv4Addr]));
        t.sets.push(Set::new("b", &[DataType::Ipv4Addr]));
        let e = |ip: &str| Elem::new(vec![KeyPart::addr(ip.parse().unwrap())]).with_comment("o");
        let found = vec![
            Found { set: t.sets[1].clone(), elem: e("10.0.0.2") },
            Found { set: t.sets[0].clone(), elem: e("10.0.0.1") },
            Found { set: t.sets[1].clone(), elem: e("10.0.0.3") },
        ];
        assert_eq!(
            deletions(&t.id(), &found).text(),
            "delete element inet t b { 10.0.0.2, 10.0.0.3 }\ndelete element inet t a { 10.0.0.1 }\n"
        );
    }
}
