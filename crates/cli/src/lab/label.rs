//! `twill lab ns label NAME k=v... k-...` and `twill lab pod label NS/NAME k=v... k-...`: as
//! `kubectl label --overwrite`, `k=v` sets a label and `k-` removes it. The records in the
//! datastore change, so policies selecting by these labels follow within a pass of every
//! agent (the command waits for that unless `--no-wait`).

use anyhow::Result;
use cluster::ops;

use super::apply::finish;
use super::names::{Names, PodRef};
use super::{registry, state};

/// `ns label NAME k=v k2-`, as `twill cluster label namespace`.
pub fn ns_label(names: &Names, name: &str, args: &[String], wait: bool) -> Result<()> {
    let changes = ops::parse_label_changes(args)?;
    let state = state::load_running(names)?;
    registry::with_store(&names.state_dir(), &state, |s| Ok(ops::label_namespace(s, name, &changes)?))?;
    println!("namespace {name} labeled");
    finish(names, &state, wait)
}

/// `pod label NS/NAME k=v k2-`, as `twill cluster label pod`.
pub fn pod_label(names: &Names, pod: &PodRef, args: &[String], wait: bool) -> Result<()> {
    let changes = ops::parse_label_changes(args)?;
    let state = state::load_running(names)?;
    state.pod(pod)?;
    registry::with_store(&names.state_dir(), &state, |s| {
        Ok(ops::label_pod(s, &pod.ns, &pod.name, &changes)?)
    })?;
    println!("pod {pod} labeled");
    finish(names, &state, wait)
}
