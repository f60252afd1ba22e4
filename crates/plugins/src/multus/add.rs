//! ADD: read the pod's selection, resolve every network, plan, cache, attach one network
//! after another (rolling back on failure), answer, record the network-status.

use std::collections::BTreeMap;
use std::time::Duration;

use cluster::multinet::{DEFAULT_NETWORK_ANNOTATION, NETWORKS_ANNOTATION};
use cni_exec::Runtime;
use cni_skel::CmdArgs;
use cni_spec::{CniResult, Error, NetConf};

use super::cache::{self, Cache, Entry};
use super::conf::{ClusterNetwork, MultusConf};
use super::plan::{self, Delegate};
use super::pod::{self, Pod};
use super::resolve::{self, Cluster, NetworkConfig, Resolved};
use super::selection::{self, Selection};
use super::store::DatastoreCluster;
use super::{journal, result, route, runtime, runtime_conf, wait_ready};

/// How long ADD waits for `readinessindicatorfile`.
const READY_LIMIT: Duration = Duration::from_secs(45);

pub fn add(args: &CmdArgs, netconf: &NetConf) -> Result<CniResult, Error> {
    let conf = MultusConf::parse(netconf)?;
    wait_ready(conf.readiness_indicator_file.as_deref(), READY_LIMIT)?;
    let netns = args
        .netns
        .as_ref()
        .map(|p| p.display().to_string())
        .ok_or_else(|| Error::invalid_env("multus: CNI_NETNS is required for ADD"))?;
    let pod = pod::identity(args);
    let mut cluster = DatastoreCluster::new(conf.datastore.clone());
    let annotations = pod::annotations(netconf, &pod, &mut cluster)?;
    let delegates = plan_attachments(args, netconf, &conf, &pod, &annotations, &mut cluster)?;
    conf.log.verbose(&format!(
        "ADD {} pod {}: {}",
        args.container_id,
        pod.qualified(),
        delegates.iter().map(Delegate::describe).collect::<Vec<_>>().join(", ")
    ));
    let entry = Entry {
        kind: cache::KIND.into(),
        network: netconf.name.clone(),
        container_id: args.container_id.clone(),
        if_name: args.ifname.clone(),
        netns,
        cni_args: args.args.clone(),
        pod: pod.qualified(),
        delegates,
    };
    let cache = Cache::new(&conf.cni_dir);
    cache.put(&entry)?;
    let rt = runtime(&conf, args);
    let attached = attach_all(&rt, &entry).and_then(|attached| {
        finish(&conf, &entry, &attached, runtime_annotations(netconf)?)?;
        Ok(attached)
    });
    match attached {
        Ok(attached) => Ok(CniResult { cni_version: netconf.version()?, ..result::merge(&attached) }),
        Err(e) => Err(rollback(&rt, &cache, &entry, &conf, e)),
    }
}

/// Every network of this pod, resolved and planned; nothing is touched.
fn plan_attachments(
    args: &CmdArgs,
    netconf: &NetConf,
    conf: &MultusConf,
    pod: &Pod,
    annotations: &BTreeMap<String, String>,
    cluster: &mut dyn Cluster,
) -> Result<Vec<Delegate>, Error> {
    let who = pod.qualified();
    let selections = match annotations.get(NETWORKS_ANNOTATION) {
        Some(v) => selection::parse_annotation(&who, NETWORKS_ANNOTATION, v)?,
        None => Vec::new(),
    };
    let cluster_net = match annotations.get(DEFAULT_NETWORK_ANNOTATION) {
        Some(v) => default_override(&who, v, pod, conf, cluster)?,
        None => cluster_network(conf, cluster, false)?,
    };
    let always = always_attached(conf, pod, cluster, false)?;
    let selected = selections
        .into_iter()
        .map(|s| resolve::selected(&s, &pod.namespace, conf, cluster).map(|r| (s, r)))
        .collect::<Result<Vec<(Selection, Resolved)>, Error>>()?;
    plan::plan(&args.ifname, cluster_net, always, selected, &netconf.runtime_config)
}

/// The configured cluster network. `local` skips the datastore.
pub fn cluster_network(conf: &MultusConf, cluster: &mut dyn Cluster, local: bool) -> Result<Resolved, Error> {
    match &conf.cluster {
        ClusterNetwork::Reference(r) => resolve::by_reference(r, conf, cluster, local),
        ClusterNetwork::Inline(config) => {
            let net = NetworkConfig { config: config.clone(), conflist: config.contains_key("plugins") };
            Ok(Resolved { status_name: net.name().to_string(), net })
        }
    }
}

/// `delegates[1..]`, or `defaultNetworks` unless the pod is in a system namespace.
pub fn always_attached(
    conf: &MultusConf,
    pod: &Pod,
    cluster: &mut dyn Cluster,
    local: bool,
) -> Result<Vec<Resolved>, Error> {
    let mut out: Vec<Resolved> = conf
        .extra_delegates
        .iter()
        .map(|config| {
            let net = NetworkConfig { config: config.clone(), conflist: config.contains_key("plugins") };
            Resolved { status_name: net.name().to_string(), net }
        })
        .collect();
    if !conf.system_namespaces.contains(&pod.namespace) {
        for r in &conf.default_networks {
            out.push(resolve::by_reference(r, conf, cluster, local)?);
        }
    }
    Ok(out)
}

/// `v1.multus-cni.io/default-network`: one definition (the pod's namespace by default)
/// replacing the cluster network for this pod.
fn default_override(
    who: &str,
    value: &str,
    pod: &Pod,
    conf: &MultusConf,
    cluster: &mut dyn Cluster,
) -> Result<Resolved, Error> {
    let mut sel = selection::parse_annotation(who, DEFAULT_NETWORK_ANNOTATION, value)?;
    if sel.len() != 1 {
        return Err(Error::invalid_config(format!(
            "multus: pod {who}: annotation {DEFAULT_NETWORK_ANNOTATION} must name exactly one network, not {}",
            sel.len()
        )));
    }
    let s = sel.remove(0);
    let namespace = s.namespace.clone().unwrap_or_else(|| pod.namespace.clone());
    if !cluster.available() {
        return Err(Error::invalid_config(format!(
            "multus: pod {who}: {DEFAULT_NETWORK_ANNOTATION} names {namespace}/{} but no datastore is configured",
            s.name
        )));
    }
    let def = cluster.definition(&namespace, &s.name)?.ok_or_else(|| {
        Error::invalid_config(format!(
            "multus: pod {who}: network-attachment-definition {namespace}/{} not found",
            s.name
        ))
    })?;
    resolve::from_definition(&def, &conf.conf_dir)
}

/// The runtime's own pod annotations, for the journal (the operator's are in the datastore).
fn runtime_annotations(netconf: &NetConf) -> Result<BTreeMap<String, String>, Error> {
    Ok(cni_spec::runtime_config(netconf, crate::twill_pod::ANNOTATIONS_CAPABILITY)?.unwrap_or_default())
}

/// Runs every delegate's ADD in order; on failure, how many delegates may have done
/// something (the failed one included) and the error.
fn attach_all(rt: &Runtime, entry: &Entry) -> Result<Vec<(Delegate, CniResult)>, Error> {
    let claimed = plan::claimed_families(&entry.delegates);
    let mut out = Vec::new();
    for d in &entry.delegates {
        let rtc = runtime_conf(&entry.container_id, &entry.netns, &entry.cni_args, d);
        let loaded = d.network().loaded()?;
        let mut r = rt.add(&loaded, &rtc).map_err(|e| super::delegate_error(d, "add", &e))?;
        let made_iface = r.interfaces.iter().any(|i| i.name == d.ifname && i.sandbox.is_some());
        if claimed != (false, false) && made_iface {
            route::apply_default_routes(
                std::path::Path::new(&entry.netns),
                &d.ifname,
                claimed,
                &d.default_route,
            )?;
            result::adjust_routes(&mut r, claimed, d);
            // CHECK compares the pod with the cached result: it must show the moved routes.
            let version = rt.version_of(&loaded).map_err(|e| super::delegate_error(d, "add", &e))?;
            if let Some(mut cached) = rt.cache().get(d.name(), &entry.container_id, &d.ifname) {
                cached.result = Some(r.to_json(version)?);
                rt.cache().put(&cached).map_err(|e| super::delegate_error(d, "add", &e))?;
            }
        }
        out.push((d.clone(), r));
    }
    Ok(out)
}

/// Records the network-status in the node's journal, when there is one.
fn finish(
    conf: &MultusConf,
    entry: &Entry,
    attached: &[(Delegate, CniResult)],
    annotations: BTreeMap<String, String>,
) -> Result<(), Error> {
    let status = attached.iter().flat_map(|(d, r)| result::statuses(d, r)).collect();
    match journal::locate(conf, journal::cluster_config(&entry.delegates)) {
        Some(sink) => sink.record(entry, &attached[0].1, status, annotations),
        None => {
            conf.log.debug("no attachment journal (no journalDir, no twill-pod in the cluster network): network-status is not recorded");
            Ok(())
        }
    }
}

/// Undoes a failed ADD: DEL of every delegate in reverse (each DEL is idempotent, so the
/// ones that never ran are harmless), then the cache goes — unless some DEL failed, when it
/// stays for the runtime's DEL to finish the job.
fn rollback(rt: &Runtime, cache: &Cache, entry: &Entry, conf: &MultusConf, e: Error) -> Error {
    let failures = super::teardown::detach(rt, entry, &entry.netns, &conf.log);
    let journal = journal::locate(conf, journal::cluster_config(&entry.delegates))
        .map(|s| s.forget(&entry.network, &entry.container_id, &entry.if_name).map(drop))
        .unwrap_or(Ok(()));
    if failures.is_empty() && journal.is_ok() {
        if let Err(e2) = cache.remove(&entry.network, &entry.container_id, &entry.if_name) {
            conf.log.error(&e2.msg);
        }
        return e;
    }
    let undone: Vec<String> =
        failures.iter().map(|(_, f)| f.msg.clone()).chain(journal.err().map(|j| j.msg)).collect();
    Error {
        msg: format!("{}; rolling back also failed (a DEL will retry): {}", e.msg, undone.join("; ")),
        ..e
    }
}

#[cfg(test)]
mod tests {
    use super::super::resolve::fake::FakeCluster;
    use super::*;
    use serde_json::json;

    fn conf(dir: &std::path::Path, extra: serde_json::Value) -> MultusConf {
        let mut v = json!({"cniVersion": "1.0.0", "name": "m", "type": "multus", "confDir": dir});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        MultusConf::parse(&NetConf::parse(v.to_string().as_bytes()).unwrap()).unwrap()
    }

    fn pod(namespace: &str) -> Pod {
        Pod { namespace: namespace.into(), name: "p".into(), known: true }
    }

    #[test]
    fn default_networks_skip_system_namespaces_and_extra_delegates_do_not() {
        let dir = std::env::temp_dir().join(format!("twill-multus-always-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("sidecar.conf"),
            r#"{"cniVersion":"1.0.0","name":"sidecar","type":"macvlan"}"#,
        )
        .unwrap();
        let mut cluster = FakeCluster::default();
        let c = conf(
            &dir,
            json!({"clusterNetwork": "sidecar", "defaultNetworks": ["sidecar"], "systemNamespaces": ["infra"]}),
        );
        let names = |r: Vec<Resolved>| r.into_iter().map(|r| r.status_name).collect::<Vec<_>>();
        assert_eq!(names(always_attached(&c, &pod("x"), &mut cluster, false).unwrap()), ["sidecar"]);
        assert!(always_attached(&c, &pod("infra"), &mut cluster, false).unwrap().is_empty());
        let c = conf(&dir, json!({"delegates": [{"type": "bridge"}, {"type": "macvlan"}]}));
        assert_eq!(names(always_attached(&c, &pod("kube-system"), &mut cluster, false).unwrap()), ["m-1"]);
        assert_eq!(cluster_network(&c, &mut cluster, false).unwrap().status_name, "m");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
