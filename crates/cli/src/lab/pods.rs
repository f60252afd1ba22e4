//! `twill lab ns add` and `twill lab pod add|del`: a pod is a namespace attached through the
//! runtime side on its node with the node's network list, running `twill lab serve`. The lab
//! writes what an operator would (the namespace, the pod's labels and named ports) through
//! `twill_cluster::ops`; the pod's record — node, addresses — is published by the node's
//! twilld from what the CNI chain recorded, exactly as for a pod started by any runtime.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use netns::NetNs;

use super::attach::{self, container_id};
use super::names::{Names, PodRef, check_dns_label};
use super::process::{self, Proc};
use super::state::{LabState, NodeState, PodState, StateDir};
use super::{layout, ready, registry};
use cluster::manifest::Manifest;
use cluster::{NamespaceRecord, Registry};

/// Labels written `k=v,k2=v2`.
pub fn parse_labels(s: &str) -> Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    for pair in s.split(',').filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else { bail!("label {pair:?} must be written key=value") };
        if k.is_empty() || k.contains(char::is_whitespace) || v.contains(char::is_whitespace) {
            bail!("label {pair:?}: keys must be non-empty and neither keys nor values may hold spaces");
        }
        labels.insert(k.to_string(), v.to_string());
    }
    Ok(labels)
}

/// Annotations written `k=v` (one per flag), with `--networks` as the multi-network one;
/// keys are checked as the API server checks them.
pub fn parse_annotations(pairs: &[String], networks: Option<&str>) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("annotation {pair:?} must be written key=value")
        };
        policy::names::label_key(k).map_err(|e| anyhow::anyhow!("annotation {pair:?}: {e}"))?;
        out.insert(k.to_string(), v.to_string());
    }
    if let Some(n) = networks {
        out.insert(cluster::multinet::NETWORKS_ANNOTATION.to_string(), n.to_string());
    }
    Ok(out)
}

/// Creates or relabels a namespace (labels replace earlier ones), as `twill cluster apply`.
pub fn ns_add(names: &Names, name: &str, labels: BTreeMap<String, String>) -> Result<()> {
    check_dns_label("namespace", name)?;
    let sd = StateDir::lock(names, false)?;
    let state = sd.load()?;
    let ns = NamespaceRecord { name: name.to_string(), labels };
    let outcome = registry::apply(&sd.dir, &state, &[Manifest::Namespace(ns)])?;
    println!("namespace {name} {}", outcome.first().map_or("", |o| o.as_str()));
    Ok(())
}

/// Creates the namespace unless the datastore has it.
fn ensure_namespace(dir: &Path, state: &LabState, name: &str) -> Result<()> {
    let exists = registry::with_store(dir, state, |s| {
        Ok(Registry::new(s).get::<NamespaceRecord>(&cluster::layout::namespace_key(name))?.is_some())
    })?;
    if !exists {
        let ns = NamespaceRecord { name: name.to_string(), labels: BTreeMap::new() };
        registry::apply(dir, state, &[Manifest::Namespace(ns)])?;
        println!("namespace {name} (created for the pod)");
    }
    Ok(())
}

/// Creates, attaches and starts a pod; on failure removes what it made.
pub fn pod_add(
    names: &Names,
    pod: &PodRef,
    node: Option<u8>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
) -> Result<()> {
    let sd = StateDir::lock(names, false)?;
    let mut state = sd.load()?;
    if state.pods.contains_key(&pod.to_string()) {
        bail!("pod {pod} already exists");
    }
    ensure_namespace(&sd.dir, &state, &pod.ns)?;
    // The pod's labels, annotations (its network selection among them) and ports exist
    // before it is attached, as a Pod object does in Kubernetes before the kubelet runs it.
    registry::apply(&sd.dir, &state, &[Manifest::Pod(registry::pod_meta(pod, &labels, &annotations))])?;
    let node = state.node(node.unwrap_or_else(|| least_loaded(&state)))?.clone();
    let netns_name = names.pod(pod, |n| state.netns.iter().any(|m| m == n) || netns::named_path(n).exists());
    let pod_ns = netns::create_named(&netns_name).with_context(|| format!("create netns {netns_name}"))?;
    state.netns.push(netns_name.clone());
    sd.save(&state)?;
    nl::reset_inherited(&pod_ns).with_context(|| format!("reset the sysctls {netns_name} inherited"))?;
    let mut record = PodState {
        ns: pod.ns.clone(),
        name: pod.name.clone(),
        netns: netns_name,
        node: node.index,
        container_id: container_id(pod),
        ips: Vec::new(),
        server: None,
    };
    let key = pod.to_string();
    // The pod is recorded as soon as its server runs, so that `lab down` after an interrupted
    // `pod add` stops that server by its pid.
    let outcome = start_pod(&sd.dir, &node, &mut record, &annotations, &state, &mut |p| {
        let mut with_pod = state.clone();
        with_pod.pods.insert(key.clone(), p.clone());
        sd.save(&with_pod)
    });
    match outcome {
        Ok(()) => {
            state.pods.insert(key, record.clone());
            sd.save(&state)?;
            let ips: Vec<String> = record.ips.iter().map(|ip| ip.to_string()).collect();
            println!("pod {pod} on {} ({}): {}", node.name, record.netns, ips.join(" "));
            Ok(())
        }
        Err(e) => {
            let mut undo = stop_pod(&sd.dir, &node, &record);
            let meta = Manifest::Pod(registry::pod_meta(pod, &BTreeMap::new(), &BTreeMap::new()));
            undo.extend(registry::delete(&sd.dir, &state, &[meta]).err());
            for e2 in undo {
                eprintln!("twill lab: while undoing pod {pod}: {e2:#}");
            }
            state.netns.retain(|n| *n != record.netns);
            sd.save(&state)?;
            Err(e)
        }
    }
}

/// The node with the fewest pods (the lowest index among equals).
fn least_loaded(state: &LabState) -> u8 {
    let load = |i: u8| state.pods.values().filter(|p| p.node == i).count();
    state.nodes.iter().map(|n| n.index).min_by_key(|&i| (load(i), i)).unwrap_or(1)
}

/// Attaches the pod, starts its server (then calls `record`), waits for it to answer and for
/// its node to publish it.
fn start_pod(
    dir: &Path,
    node: &NodeState,
    pod: &mut PodState,
    annotations: &BTreeMap<String, String>,
    state: &LabState,
    record: &mut dyn FnMut(&PodState) -> Result<()>,
) -> Result<()> {
    let rt = attach::runtime_conf_annotated(&pod.pod_ref(), &pod.netns, annotations);
    pod.ips = attach::attach(dir, node, &rt)?;
    let ns = NetNs::open(netns::named_path(&pod.netns))?;
    let log = layout::pod_log(dir, &pod.pod_ref());
    pod.server = Some(start_server(&ns, &pod.pod_ref().to_string(), Some(&node.name), &log)?);
    record(pod)?;
    let node_ns = NetNs::open(netns::named_path(&node.netns))?;
    ready::pod(&node_ns, &ns, pod)?;
    registry::wait_published(dir, state, &pod.pod_ref(), true).map(drop)
}

/// Starts `twill lab serve` inside `ns`.
pub fn start_server(ns: &NetNs, who: &str, node: Option<&str>, log: &Path) -> Result<Proc> {
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    let me = std::env::current_exe().context("find the running twill binary")?;
    let mut args = vec!["lab".to_string(), "serve".into(), "--who".into(), who.into()];
    if let Some(node) = node {
        args.extend(["--node".into(), node.into()]);
    }
    process::spawn_in(ns, &me, args, log)
}

/// Stops the server, detaches and removes the namespace; best-effort, errors collected.
fn stop_pod(dir: &Path, node: &NodeState, pod: &PodState) -> Vec<anyhow::Error> {
    let servers: Vec<&Proc> = pod.server.iter().collect();
    let mut errors = process::stop_all(&servers, Duration::from_secs(1));
    errors.extend(attach::detach(dir, node, &attach::runtime_conf(&pod.pod_ref(), &pod.netns)));
    if let Err(e) = netns::delete_named(&pod.netns) {
        errors.push(anyhow::Error::new(e).context(format!("remove netns {}", pod.netns)));
    }
    errors
}

/// Deletes a pod: server, attachment (its node withdraws its record), namespace, its labels
/// and ports in the datastore, state.
pub fn pod_del(names: &Names, pod: &PodRef) -> Result<()> {
    let sd = StateDir::lock(names, false)?;
    let mut state = sd.load()?;
    let record = state.pod(pod)?.clone();
    let node = state.node(record.node)?.clone();
    let mut errors = stop_pod(&sd.dir, &node, &record);
    if let Err(e) = registry::wait_published(&sd.dir, &state, pod, false) {
        errors.push(e);
    }
    if let Err(e) = registry::delete(
        &sd.dir,
        &state,
        &[Manifest::Pod(registry::pod_meta(pod, &BTreeMap::new(), &BTreeMap::new()))],
    ) {
        errors.push(e);
    }
    state.pods.remove(&pod.to_string());
    state.netns.retain(|n| *n != record.netns);
    sd.save(&state)?;
    match errors.into_iter().next() {
        None => {
            println!("pod {pod} deleted");
            Ok(())
        }
        Some(first) => Err(first.context(format!("pod {pod} deleted with errors"))),
    }
}

/// Best-effort removal of every pod's attachment, for teardown. A pod whose node's namespace
/// is gone (the machine was "powered off": its namespace deleted) has nothing left to free:
/// its host-side veth went with that namespace, and its address reservation lives in the
/// node's agent state directory, which teardown removes with the rest of the lab's state.
pub fn detach_all(dir: &Path, state: &LabState) -> Vec<anyhow::Error> {
    let mut errors = Vec::new();
    for pod in state.pods.values() {
        match state.node(pod.node) {
            Ok(node) if !netns::named_path(&node.netns).exists() => {
                println!("pod {}: its node {} is gone; nothing to detach", pod.pod_ref(), node.name);
            }
            Ok(node) => {
                errors.extend(attach::detach(dir, node, &attach::runtime_conf(&pod.pod_ref(), &pod.netns)))
            }
            Err(e) => errors.push(e),
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse() {
        let l = parse_labels("app=web,tier=front").unwrap();
        assert_eq!(l.get("app").map(String::as_str), Some("web"));
        assert_eq!(l.len(), 2);
        assert!(parse_labels("").unwrap().is_empty());
        let a = parse_annotations(&["x.io/y=a=b".into()], Some("data@net5")).unwrap();
        assert_eq!(a["x.io/y"], "a=b");
        assert_eq!(a["k8s.v1.cni.cncf.io/networks"], "data@net5");
        assert!(parse_annotations(&["novalue".into()], None).is_err());
        assert!(parse_annotations(&["Bad Key=1".into()], None).is_err());
        assert_eq!(parse_labels("a=").unwrap().get("a").map(String::as_str), Some(""));
        for bad in ["a", "=b", "a b=c", "a=b c"] {
            assert!(parse_labels(bad).is_err(), "{bad}");
        }
    }
}
