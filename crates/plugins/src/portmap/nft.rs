//! The nftables backend: one table for the node, created once under a lock; a pod is one
//! transaction of owner-tagged map and set elements on ADD, and one on DEL, which finds them
//! by the keys it knows (mappings, pod addresses) without listing the table.

use std::path::Path;

use cni_spec::{Attachment, Error, ErrorCode};
use fw::ct::UdpFlow;
use fw::nft::owned::{Found, find_owned, find_where, with_lock};
use fw::nft::{Batch, Conn, Elem, Family, Table, TableId};

use super::plan::{Entry, Plan, TABLE, Variant, add_batch, describe, sets, table, udp_flows, variant_batch};
use crate::kernel::fw_error;
use crate::owner::is_stale;

/// A host port held by another attachment: plugin-specific, so runtimes can tell it from a
/// broken config.
pub const PORT_IN_USE: ErrorCode = ErrorCode::Plugin(100);

fn table_id() -> TableId {
    TableId::new(Family::Inet, TABLE)
}

/// Adds the plan's elements in one transaction; creates the table (or a variant's maps) the
/// first time they are needed.
pub fn setup(conn: &mut Conn, plan: &Plan) -> Result<(), Error> {
    let batch = add_batch(plan, true);
    let first = match conn.apply(&batch) {
        Err(e) if e.is_missing() => {
            ensure(conn, &plan.variants)?;
            conn.apply(&batch)
        }
        other => other,
    };
    match first {
        Err(e) if e.is_exists() => add_unless_held(conn, plan),
        other => other.map_err(fw_error),
    }
}

/// The kernel's copy of each planned entry (`None` where there is none).
fn read_back(conn: &mut Conn, plan: &Plan, entries: &[Entry]) -> Result<Vec<Option<Elem>>, Error> {
    let mut out = Vec::new();
    for set in sets(&plan.variants) {
        let keys: Vec<Elem> =
            entries.iter().filter(|e| e.set == set.name).map(|e| e.elem.key_only()).collect();
        out.extend(conn.get_elems(&table_id(), &set, &keys).map_err(fw_error)?);
    }
    Ok(out)
}

/// A key already exists: fine when this attachment holds it with the same target (a
/// repeated ADD), a conflict otherwise.
fn add_unless_held(conn: &mut Conn, plan: &Plan) -> Result<(), Error> {
    let ordered: Vec<Entry> = sets(&plan.variants)
        .iter()
        .flat_map(|s| plan.dnat.iter().filter(|e| e.set == s.name).cloned())
        .collect();
    let existing = read_back(conn, plan, &ordered)?;
    for (want, have) in ordered.iter().zip(&existing) {
        if let Some(have) = have.as_ref().filter(|h| *h != &want.elem) {
            return Err(in_use(&want.elem, have.comment.as_deref()));
        }
    }
    match conn.apply(&add_batch(plan, false)) {
        Err(e) if e.is_exists() => {
            Err(Error::new(PORT_IN_USE, "a requested host port is already mapped")
                .with_details(e.to_string()))
        }
        other => other.map_err(fw_error),
    }
}

fn in_use(e: &Elem, holder: Option<&str>) -> Error {
    let by = holder.map(|h| format!(" by {h}")).unwrap_or_default();
    Error::new(PORT_IN_USE, format!("host port {} is already mapped{by}", describe(&e.key)))
}

/// Creates the table, and the maps and rules of `variants`, unless they exist; serialised
/// with every other twill table creation so concurrent first pods never duplicate rules.
pub fn ensure(conn: &mut Conn, variants: &[Variant]) -> Result<(), Error> {
    let created = with_lock(Path::new(fw::LOCK), || -> Result<(), fw::nft::Error> {
        let mut batch = Batch::new();
        let present = conn.has_table(&table_id())?;
        if !present {
            batch.add_table(&table());
        }
        for v in variants {
            if !present || !conn.has_set(&table_id(), &super::plan::map_name("port", v.v6, Some(v)))? {
                batch.extend(variant_batch(v));
            }
        }
        conn.apply(&batch)
    });
    match created.map_err(fw_error)? {
        Err(e)
            if !variants.is_empty()
                && e.errno().is_some_and(|n| n == libc::EINVAL || n == libc::EOPNOTSUPP) =>
        {
            let conds: Vec<String> = variants
                .iter()
                .map(|v| v.conditions.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(" "))
                .collect();
            Err(Error::invalid_config(format!("the kernel rejects conditions {conds:?}: {e}")))
        }
        other => other.map_err(fw_error),
    }
}

/// CHECK: every planned element is in the table, owned by this attachment, same target.
pub fn check(conn: &mut Conn, plan: &Plan) -> Result<(), Error> {
    let ordered: Vec<Entry> = sets(&plan.variants)
        .iter()
        .flat_map(|s| plan.entries().filter(|e| e.set == s.name).cloned())
        .collect();
    let existing = read_back(conn, plan, &ordered)?;
    match ordered.iter().zip(&existing).find(|(want, have)| have.as_ref() != Some(&want.elem)) {
        None => Ok(()),
        Some((e, _)) => Err(Error::internal(format!(
            "{} entry {} of {} is missing from table inet {TABLE}",
            e.set,
            describe(&e.elem.key),
            plan.owner
        ))),
    }
}

/// Deletes `found` in one transaction; returns the UDP flows they carried.
fn delete(conn: &mut Conn, t: &Table, found: &[Found]) -> Result<Vec<UdpFlow>, Error> {
    conn.apply(&fw::nft::owned::deletions(&t.id(), found)).map_err(fw_error)?;
    let removed: Vec<Elem> = found.iter().map(|f| f.elem.clone()).collect();
    Ok(udp_flows(&removed))
}

/// DEL: the plan's elements this attachment holds, read back by key (a plan without pod
/// addresses, from a DEL without prevResult, falls back to reading the sets).
pub fn teardown(conn: &mut Conn, plan: &Plan) -> Result<Vec<UdpFlow>, Error> {
    let mut t = table();
    t.sets = sets(&plan.variants);
    let found = match plan.is_empty() {
        false => {
            let keys: Vec<(&str, Elem)> = plan.entries().map(|e| (e.set.as_str(), e.elem.clone())).collect();
            find_owned(conn, &t, &keys, &plan.owner)
        }
        true => find_where(conn, &t.id(), |o| o == plan.owner),
    };
    delete(conn, &t, &found.map_err(fw_error)?)
}

/// GC: every element of a stale attachment of `network`, in any map of the table (also
/// those of conditions no longer configured).
pub fn gc(conn: &mut Conn, network: &str, valid: &[Attachment]) -> Result<Vec<UdpFlow>, Error> {
    let t = table();
    let found = find_where(conn, &t.id(), |o| is_stale(o, network, valid)).map_err(fw_error)?;
    delete(conn, &t, &found)
}
