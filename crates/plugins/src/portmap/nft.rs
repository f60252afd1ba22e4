//! The nftables backend: one table for the node, created once under a lock; a pod is one
//! transaction of owner-tagged map and set elements on ADD, and one on DEL.

use std::path::Path;

use cni_spec::{Attachment, Error, ErrorCode};
use fw::{Batch, Element};
use serde_json::Value;

use super::host::UdpFlow;
use super::plan::{
    self, Plan, TABLE, Variant, Verb, add_batch, conflicts, delete_batch, describe, map_name, missing,
    table_definition, variant_definition,
};
use crate::kernel::fw_error;
use crate::owner::is_stale;

/// A host port held by another attachment: plugin-specific, so runtimes can tell it from a
/// broken config.
pub const PORT_IN_USE: ErrorCode = ErrorCode::Plugin(100);

/// Adds the plan's elements in one transaction; creates the table (or a variant's maps) the
/// first time they are needed.
pub fn setup(plan: &Plan) -> Result<(), Error> {
    let batch = add_batch(plan, Verb::Create);
    let first = match fw::apply(&batch) {
        Err(e) if e.is_missing() => {
            ensure(&plan.variants)?;
            fw::apply(&batch)
        }
        other => other,
    };
    match first {
        Err(e) if is_exists(&e) => add_unless_held(plan),
        other => other.map_err(fw_error),
    }
}

fn is_exists(e: &fw::Error) -> bool {
    matches!(e, fw::Error::Nft { stderr, .. } if stderr.contains("File exists"))
}

/// A key already exists: fine when this attachment holds it with the same target (a
/// repeated ADD), a conflict otherwise.
fn add_unless_held(plan: &Plan) -> Result<(), Error> {
    let existing = fw::set_elements("inet", TABLE).map_err(fw_error)?;
    if let Some((entry, holder)) = conflicts(plan, &existing).first() {
        return Err(in_use(&entry.key, holder.comment.as_deref()));
    }
    match fw::apply(&add_batch(plan, Verb::Add)) {
        Err(e) if is_exists(&e) => Err(in_use("", None).with_details(e.to_string())),
        other => other.map_err(fw_error),
    }
}

fn in_use(key: &str, holder: Option<&str>) -> Error {
    let what = if key.is_empty() {
        "a requested host port".to_string()
    } else {
        format!("host port {}", describe(key))
    };
    let by = holder.map(|h| format!(" by {h}")).unwrap_or_default();
    Error::new(PORT_IN_USE, format!("{what} is already mapped{by}"))
}

/// Creates the table, and the maps and rules of `variants`, unless they exist; serialised
/// with every other twill table creation so concurrent first pods never duplicate rules.
pub fn ensure(variants: &[Variant]) -> Result<(), Error> {
    let created = fw::with_lock(Path::new(fw::LOCK), || -> Result<(), fw::Error> {
        let (mut batch, present) = match fw::list_json(&["table", "inet", TABLE]) {
            Ok(json) => (Batch::new(), map_names(&json)),
            Err(e) if e.is_missing() => {
                let mut b = Batch::new();
                b.add(table_definition());
                (b, Vec::new())
            }
            Err(e) => return Err(e),
        };
        for v in variants.iter().filter(|v| !present.contains(&map_name("port", v.v6, Some(v)))) {
            for line in variant_definition(v).text().lines() {
                batch.add(line);
            }
        }
        fw::apply(&batch)
    });
    match created.map_err(fw_error)? {
        Err(fw::Error::Nft { stderr, .. }) if !variants.is_empty() => Err(Error::invalid_config(format!(
            "nft rejects conditions {:?}: {stderr}",
            variants.iter().map(|v| v.conditions.as_str()).collect::<Vec<_>>()
        ))),
        other => other.map_err(fw_error),
    }
}

/// Names of the maps in an `nft -j list table` answer.
fn map_names(json: &Value) -> Vec<String> {
    let objects = json.get("nftables").and_then(Value::as_array).into_iter().flatten();
    objects.filter_map(|o| o.get("map")?.get("name")?.as_str().map(str::to_string)).collect()
}

/// CHECK: every planned element is in the table, owned by this attachment, same target.
pub fn check(plan: &Plan) -> Result<(), Error> {
    let existing = fw::set_elements("inet", TABLE).map_err(fw_error)?;
    match missing(plan, &existing).first() {
        None => Ok(()),
        Some(e) => Err(Error::internal(format!(
            "{} entry {} of {} is missing from table inet {TABLE}",
            e.set,
            describe(&e.key),
            plan.owner
        ))),
    }
}

/// Deletes every element whose owner `doomed` selects, in one transaction under the lock
/// (so a concurrent ADD cannot slip an element under a key between listing and deleting);
/// returns the UDP flows they carried.
pub fn remove_where(doomed: impl Fn(&str) -> bool) -> Result<Vec<UdpFlow>, Error> {
    let removed = fw::with_lock(Path::new(fw::LOCK), || -> Result<Vec<Element>, fw::Error> {
        let all = fw::set_elements("inet", TABLE)?;
        let owned: Vec<Element> =
            all.into_iter().filter(|e| e.comment.as_deref().is_some_and(&doomed)).collect();
        fw::apply(&delete_batch(&owned))?;
        Ok(owned)
    });
    Ok(plan::udp_flows(&removed.map_err(fw_error)?.map_err(fw_error)?))
}

pub fn teardown(owner: &str) -> Result<Vec<UdpFlow>, Error> {
    remove_where(|o| o == owner)
}

pub fn gc(network: &str, valid: &[Attachment]) -> Result<Vec<UdpFlow>, Error> {
    remove_where(|o| is_stale(o, network, valid))
}
