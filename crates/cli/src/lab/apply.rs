//! `twill lab apply -f FILE`, `twill lab delete -f FILE` and `twill lab policy delete|list`:
//! NetworkPolicies and Namespaces into and out of the cluster datastore, where every node's
//! twilld picks them up. Like kubectl, applying replaces an object whole; unlike kubectl, the
//! command then waits (unless `--no-wait`) until every agent enforces the change.

use std::path::Path;

use agent::bgppeer::{BgpPeerRecord, bgppeer_key};
use agent::layout::policy_key;
use agent::{NamespaceRecord, PolicyRecord};
use anyhow::{Result, bail};
use policy::{NAMESPACE_NAME_LABEL, NsName};

use super::manifest::{Manifest, read_manifests};
use super::names::Names;
use super::registry::with_registry;
use super::state::{LabState, StateDir};
use super::{enforce, pods};

/// `apply -f`: every object of the file (validated first, all or nothing).
pub fn apply_file(names: &Names, path: &str, wait: bool) -> Result<()> {
    let manifests = read_manifests(path)?;
    let sd = StateDir::lock(names, false)?;
    let mut state = sd.load()?;
    for m in &manifests {
        let verb = match m {
            Manifest::Namespace(ns) => apply_namespace(&sd, &mut state, ns)?,
            Manifest::Policy(p) => apply_policy(&sd.dir, &state, p)?,
            Manifest::BgpPeer(p) => apply_bgp_peer(&sd.dir, &state, p)?,
        };
        println!("{} {verb}", m.describe());
    }
    drop(sd);
    finish(names, &state, wait)
}

fn apply_namespace(sd: &StateDir, state: &mut LabState, ns: &NamespaceRecord) -> Result<&'static str> {
    let mut labels = ns.labels.clone();
    labels.remove(NAMESPACE_NAME_LABEL);
    let verb = match state.namespaces.get(&ns.name) {
        None => "created",
        Some(old) if *old == labels => return Ok("unchanged"),
        Some(_) => "configured",
    };
    pods::put_namespace(sd, state, &ns.name, labels)?;
    Ok(verb)
}

fn apply_policy(dir: &Path, state: &LabState, p: &PolicyRecord) -> Result<&'static str> {
    with_registry(dir, state, |r| {
        let verb = match r.get::<PolicyRecord>(&policy_key(&p.namespace, &p.name))? {
            None => "created",
            Some(old) if old == *p => return Ok("unchanged"),
            Some(_) => "configured",
        };
        r.put_policy(p)?;
        Ok(verb)
    })
}

fn apply_bgp_peer(dir: &Path, state: &LabState, p: &BgpPeerRecord) -> Result<&'static str> {
    with_registry(dir, state, |r| {
        let key = bgppeer_key(&p.name);
        let verb = match r.get::<BgpPeerRecord>(&key)? {
            None => "created",
            Some(old) if old == *p => return Ok("unchanged"),
            Some(_) => "configured",
        };
        r.put(&key, p)?;
        Ok(verb)
    })
}

fn delete_bgp_peer(dir: &Path, state: &LabState, name: &str) -> Result<Option<&'static str>> {
    let existed = with_registry(dir, state, |r| Ok(r.delete(&bgppeer_key(name))?))?;
    Ok(existed.then_some("deleted"))
}

/// `delete -f`: the file's policies, and its namespaces that have no pods left (the lab does
/// not delete pods behind the user's back).
pub fn delete_file(names: &Names, path: &str, wait: bool) -> Result<()> {
    let manifests = read_manifests(path)?;
    let sd = StateDir::lock(names, false)?;
    let mut state = sd.load()?;
    let mut missing = Vec::new();
    for m in &manifests {
        let outcome = match m {
            Manifest::Policy(p) => delete_policy(&sd.dir, &state, &p.namespace, &p.name)?,
            Manifest::Namespace(ns) => delete_namespace(&sd, &mut state, &ns.name)?,
            Manifest::BgpPeer(p) => delete_bgp_peer(&sd.dir, &state, &p.name)?,
        };
        match outcome {
            Some(verb) => println!("{} {verb}", m.describe()),
            None => missing.push(m.describe()),
        }
    }
    drop(sd);
    finish(names, &state, wait)?;
    if !missing.is_empty() {
        bail!("not found: {}", missing.join(", "));
    }
    Ok(())
}

/// `Some("deleted")`, or `None` when there was no such policy.
fn delete_policy(dir: &Path, state: &LabState, ns: &str, name: &str) -> Result<Option<&'static str>> {
    let existed = with_registry(dir, state, |r| Ok(r.delete_policy(ns, name)?))?;
    Ok(existed.then_some("deleted"))
}

fn delete_namespace(sd: &StateDir, state: &mut LabState, name: &str) -> Result<Option<&'static str>> {
    if state.pods.values().any(|p| p.ns == name) {
        return Ok(Some("kept: it still has pods (delete them with `twill lab pod del`)"));
    }
    let existed = with_registry(&sd.dir, state, |r| Ok(r.delete_namespace(name)?))?;
    let known = state.namespaces.remove(name).is_some();
    sd.save(state)?;
    Ok((existed || known).then_some("deleted"))
}

/// `policy delete NS/NAME`.
pub fn policy_delete(names: &Names, policy: &NsName, wait: bool) -> Result<()> {
    let sd = StateDir::lock(names, false)?;
    let state = sd.load()?;
    if delete_policy(&sd.dir, &state, &policy.namespace, &policy.name)?.is_none() {
        bail!("no networkpolicy {policy}");
    }
    drop(sd);
    println!("networkpolicy {policy} deleted");
    finish(names, &state, wait)
}

/// `policy list`: `NS/NAME` of every policy in the datastore.
pub fn policy_list(names: &Names) -> Result<()> {
    let state = super::state::load_running(names)?;
    let records = with_registry(&names.state_dir(), &state, |r| Ok(r.policies()?))?;
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
