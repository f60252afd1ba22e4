//! `twill lab ns label NAME k=v... k-...` and `twill lab pod label NS/NAME k=v... k-...`: as
//! `kubectl label --overwrite`, `k=v` sets a label and `k-` removes it. The records in the
//! datastore change, so policies selecting by these labels follow within a pass of every
//! agent (the command waits for that unless `--no-wait`).

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use policy::NAMESPACE_NAME_LABEL;

use super::apply::finish;
use super::names::{Names, PodRef};
use super::state::StateDir;
use super::{pods, registry};

/// One change of a label set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelChange {
    Set(String, String),
    Remove(String),
}

/// `k=v` or `k-`.
pub fn parse_changes(args: &[String]) -> Result<Vec<LabelChange>> {
    if args.is_empty() {
        bail!("no label changes given (k=v sets, k- removes)");
    }
    let mut out = Vec::new();
    for arg in args {
        if let Some(key) = arg.strip_suffix('-').filter(|k| !k.contains('=')) {
            pods::parse_labels(&format!("{key}=")).with_context(|| format!("label change {arg:?}"))?;
            out.push(LabelChange::Remove(key.to_string()));
            continue;
        }
        let labels = pods::parse_labels(arg)
            .with_context(|| format!("label change {arg:?} (k=v sets, k- removes)"))?;
        out.extend(labels.into_iter().map(|(k, v)| LabelChange::Set(k, v)));
    }
    Ok(out)
}

/// Applies `changes` to `labels`.
pub fn relabel(labels: &mut BTreeMap<String, String>, changes: &[LabelChange]) {
    for c in changes {
        match c {
            LabelChange::Set(k, v) => labels.insert(k.clone(), v.clone()),
            LabelChange::Remove(k) => labels.remove(k),
        };
    }
}

pub fn ns_label(names: &Names, name: &str, args: &[String], wait: bool) -> Result<()> {
    let changes = parse_changes(args)?;
    if changes
        .iter()
        .any(|c| matches!(c, LabelChange::Set(k, _) | LabelChange::Remove(k) if k == NAMESPACE_NAME_LABEL))
    {
        bail!("{NAMESPACE_NAME_LABEL} is set by the cluster to the namespace's name");
    }
    let sd = StateDir::lock(names, false)?;
    let mut state = sd.load()?;
    let mut labels = state.namespaces.get(name).cloned().with_context(|| {
        format!("the lab has no namespace {name} (add it with `twill lab ns add {name}`)")
    })?;
    relabel(&mut labels, &changes);
    pods::put_namespace(&sd, &mut state, name, labels)?;
    drop(sd);
    println!("namespace {name} labeled");
    finish(names, &state, wait)
}

pub fn pod_label(names: &Names, pod: &PodRef, args: &[String], wait: bool) -> Result<()> {
    let changes = parse_changes(args)?;
    let sd = StateDir::lock(names, false)?;
    let mut state = sd.load()?;
    let mut record = state.pod(pod)?.clone();
    relabel(&mut record.labels, &changes);
    registry::put_pod(&sd.dir, &state, &record)?;
    state.pods.insert(pod.to_string(), record);
    sd.save(&state)?;
    drop(sd);
    println!("pod {pod} labeled");
    finish(names, &state, wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sets_and_removals() {
        let changes = parse_changes(&args(&["a=1", "b-", "c=x,d=y"])).unwrap();
        assert_eq!(
            changes,
            [
                LabelChange::Set("a".into(), "1".into()),
                LabelChange::Remove("b".into()),
                LabelChange::Set("c".into(), "x".into()),
                LabelChange::Set("d".into(), "y".into()),
            ]
        );
        let mut labels = BTreeMap::from([("b".to_string(), "old".to_string()), ("a".into(), "0".into())]);
        relabel(&mut labels, &changes);
        assert_eq!(labels.len(), 3);
        assert_eq!(labels["a"], "1");
        assert!(!labels.contains_key("b"));
        // `a=b-` sets a to "b-"; it removes nothing.
        assert_eq!(parse_changes(&args(&["a=b-"])).unwrap(), [LabelChange::Set("a".into(), "b-".into())]);
        for bad in [&[][..], &["-"], &["a"], &["a b=c"]] {
            assert!(parse_changes(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
