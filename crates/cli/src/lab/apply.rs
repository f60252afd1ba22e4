//! `twill lab apply -f FILE`, `twill lab delete -f FILE` and `twill lab policy delete|list`:
//! the lab's wrappers over `twill cluster apply|delete` (the same `twill_cluster::ops`, on the
//! lab's datastore). Unlike kubectl, the lab then waits (unless `--no-wait`) until every
//! agent enforces the change.

use anyhow::{Result, bail};
use cluster::manifest::{Manifest, read_manifests};
use cluster::ops::Outcome;
use cluster::{PolicyRecord, Registry};
use policy::NsName;

use super::enforce;
use super::names::Names;
use super::registry;
use super::state::{LabState, StateDir};

/// `apply -f`: every object of the file (validated first, all or nothing).
pub fn apply_file(names: &Names, path: &str, wait: bool) -> Result<()> {
    let manifests = read_manifests(path)?;
    let sd = StateDir::lock(names, false)?;
    let state = sd.load()?;
    let outcomes = registry::apply(&sd.dir, &state, &manifests)?;
    for (m, o) in manifests.iter().zip(outcomes) {
        println!("{} {}", m.describe(), o.as_str());
    }
    drop(sd);
    finish(names, &state, wait)
}

/// `delete -f`: the file's objects that exist; the others are named in the error. A
/// namespace's record goes, its pods stay (the lab does not delete pods behind the user's
/// back; `twill lab pod del` does).
pub fn delete_file(names: &Names, path: &str, wait: bool) -> Result<()> {
    let manifests = read_manifests(path)?;
    let sd = StateDir::lock(names, false)?;
    let state = sd.load()?;
    let outcomes = registry::delete(&sd.dir, &state, &manifests)?;
    let mut missing = Vec::new();
    for (m, o) in manifests.iter().zip(outcomes) {
        match o {
            Outcome::NotFound => missing.push(m.describe()),
            o => println!("{} {}", m.describe(), o.as_str()),
        }
    }
    drop(sd);
    finish(names, &state, wait)?;
    if !missing.is_empty() {
        bail!("not found: {}", missing.join(", "));
    }
    Ok(())
}

/// `policy delete NS/NAME`.
pub fn policy_delete(names: &Names, policy: &NsName, wait: bool) -> Result<()> {
    let sd = StateDir::lock(names, false)?;
    let state = sd.load()?;
    let record = PolicyRecord {
        namespace: policy.namespace.clone(),
        name: policy.name.clone(),
        spec: serde_json::Value::Null,
    };
    let outcome = registry::delete(&sd.dir, &state, &[Manifest::Policy(record)])?;
    if outcome.first() != Some(&Outcome::Deleted) {
        bail!("no networkpolicy {policy}");
    }
    drop(sd);
    println!("networkpolicy {policy} deleted");
    finish(names, &state, wait)
}

/// `policy list`: `NS/NAME` of every policy in the datastore.
pub fn policy_list(names: &Names) -> Result<()> {
    let state = super::state::load_running(names)?;
    let records = registry::with_store(&names.state_dir(), &state, |s| Ok(Registry::new(s).policies()?))?;
    let mut keys: Vec<String> = records.items.iter().map(|p| format!("{}/{}", p.namespace, p.name)).collect();
    keys.sort();
    for k in keys {
        println!("{k}");
    }
    Ok(())
}

/// Waits for the agents unless told not to.
pub fn finish(names: &Names, state: &LabState, wait: bool) -> Result<()> {
    match wait {
        true => enforce::wait_enforced(&names.state_dir(), state),
        false => Ok(()),
    }
}
