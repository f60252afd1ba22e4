//! `twill-pod`: the last plugin of the network list twilld writes. It records each attachment
//! in the node's journal (`cluster::attachment`) — pod namespace and name from CNI_ARGS as CRI
//! runtimes pass them, the addresses from prevResult, the pod annotations the runtime passes
//! — and nudges twilld, which publishes the node's pods in the cluster datastore. It touches
//! only local files, so the datastore being away never fails or slows an ADD or a DEL
//! (docs/adr/0012-pods-registered-through-a-node-journal.md).
//!
//! Config: `journalDir` (required), `agentSocket` (optional: twilld's notification socket).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use cluster::attachment::{Attachment, Journal, notify};
use cni_skel::{CmdArgs, Plugin};
use cni_spec::{CniResult, Error, NetConf, Version};
use serde::Deserialize;

use crate::meta;

/// The runtime config key containerd fills with the pod's annotations.
pub const ANNOTATIONS_CAPABILITY: &str = "io.kubernetes.cri.pod-annotations";

pub struct TwillPod;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodConf {
    journal_dir: Option<PathBuf>,
    agent_socket: Option<PathBuf>,
}

impl PodConf {
    fn parse(conf: &NetConf) -> Result<(Journal, Option<PathBuf>), Error> {
        let c: PodConf = conf.plugin_conf()?;
        let dir = c.journal_dir.filter(|d| d.is_absolute()).ok_or_else(|| {
            Error::invalid_config("twill-pod: journalDir must be an absolute directory (twilld writes it)")
        })?;
        Ok((Journal::new(dir), c.agent_socket))
    }
}

/// `K8S_POD_NAMESPACE`/`K8S_POD_NAME` as CRI runtimes pass them; without them the pod is
/// `default/CONTAINERID`. A runtime that passes `K8S_POD_NAME` alone is not a CRI runtime:
/// podman's CNI backend passes its container name there (`IgnoreUnknown=1;K8S_POD_NAME=
/// gracious_bartik`), which may hold `_` and capitals; see [`runtime_name`].
pub(crate) fn pod_identity(args: &CmdArgs) -> (String, String) {
    let non_empty = |k: &str| args.arg(k).filter(|v| !v.is_empty()).map(str::to_string);
    match non_empty("K8S_POD_NAMESPACE") {
        Some(namespace) => {
            let name = non_empty("K8S_POD_NAME").unwrap_or_else(|| args.container_id.clone());
            (namespace, name)
        }
        None => {
            let name = non_empty("K8S_POD_NAME").and_then(|n| runtime_name(&n));
            ("default".to_string(), name.unwrap_or_else(|| args.container_id.clone()))
        }
    }
}

/// A non-CRI runtime's container name as a pod name: lower-cased, `_` as `-` (podman names
/// are `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, pod names are DNS subdomains); `None` when even that is
/// not a valid name, and the container ID names the pod. CRI names are never rewritten: two
/// Kubernetes pods must never map to one record.
fn runtime_name(name: &str) -> Option<String> {
    let mapped = name.to_ascii_lowercase().replace('_', "-");
    cluster::layout::check_name("pod", &mapped).is_ok().then_some(mapped)
}

fn annotations(conf: &NetConf) -> Result<BTreeMap<String, String>, Error> {
    Ok(cni_spec::runtime_config(conf, ANNOTATIONS_CAPABILITY)?.unwrap_or_default())
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn journal_err(e: cluster::attachment::JournalError) -> Error {
    Error::io(format!("twill-pod: {e}"))
}

/// The attachment an ADD with `result` records.
fn attachment(args: &CmdArgs, conf: &NetConf, result: &CniResult) -> Result<Attachment, Error> {
    let (namespace, name) = pod_identity(args);
    let netns = args.netns.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    Ok(Attachment {
        network: conf.name.clone(),
        container_id: args.container_id.clone(),
        ifname: args.ifname.clone(),
        netns,
        namespace,
        name,
        ips: result.ips.iter().map(|ip| ip.address.addr()).collect(),
        annotations: annotations(conf)?,
        since: now(),
        network_status: Vec::new(),
    })
}

impl Plugin for TwillPod {
    fn supported_versions(&self) -> &[Version] {
        &meta::CHAINED_VERSIONS
    }

    fn add(&self, args: &CmdArgs, conf: &NetConf) -> Result<CniResult, Error> {
        let (journal, socket) = PodConf::parse(conf)?;
        let result = meta::prev_result(conf)?;
        let mut record = attachment(args, conf, &result)?;
        // An ADD repeated for the same attachment keeps its first time.
        if let Ok(Some(old)) = journal.get(&record.network, &record.container_id, &record.ifname) {
            record.since = old.since;
        }
        journal.write(&record).map_err(journal_err)?;
        if let Some(s) = socket {
            notify(&s);
        }
        Ok(result)
    }

    fn check(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let (journal, _) = PodConf::parse(conf)?;
        let result = meta::prev_result_for_check(conf)?;
        let want = attachment(args, conf, &result)?;
        let have = journal.get(&conf.name, &args.container_id, &args.ifname).map_err(journal_err)?;
        match have {
            None => Err(Error::internal(format!(
                "twill-pod: attachment {}/{} of network {} is not registered in {}",
                args.container_id,
                args.ifname,
                conf.name,
                journal.dir().display()
            ))),
            Some(have)
                if (&have.namespace, &have.name, &have.ips) != (&want.namespace, &want.name, &want.ips) =>
            {
                Err(Error::internal(format!(
                    "twill-pod: attachment {}/{} is registered as pod {}/{} with {:?}, expected {}/{} with {:?}",
                    args.container_id,
                    args.ifname,
                    have.namespace,
                    have.name,
                    have.ips,
                    want.namespace,
                    want.name,
                    want.ips
                )))
            }
            Some(_) => Ok(()),
        }
    }

    fn del(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let (journal, socket) = PodConf::parse(conf)?;
        let removed = journal.remove(&conf.name, &args.container_id, &args.ifname).map_err(journal_err)?;
        if removed && let Some(s) = socket {
            notify(&s);
        }
        Ok(())
    }

    /// Forgets this network's attachments that are not in the valid list.
    fn gc(&self, _args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let (journal, socket) = PodConf::parse(conf)?;
        let valid = cni_spec::valid_attachments(conf)?.unwrap_or_default();
        let mut removed = 0;
        for a in journal.list().map_err(journal_err)? {
            let live = valid.iter().any(|v| v.container_id == a.container_id && v.ifname == a.ifname);
            if a.network == conf.name && !live {
                removed +=
                    usize::from(journal.remove(&a.network, &a.container_id, &a.ifname).map_err(journal_err)?);
            }
        }
        if removed > 0
            && let Some(s) = socket
        {
            notify(&s);
        }
        Ok(())
    }

    /// Ready when the journal can be written.
    fn status(&self, _args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let (journal, _) = PodConf::parse(conf)?;
        std::fs::create_dir_all(journal.dir()).map_err(|e| {
            Error::new(
                cni_spec::error::ErrorCode::NotAvailable,
                format!("twill-pod: journal {} cannot be created: {e}", journal.dir().display()),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cni_args: &str) -> CmdArgs {
        let env: std::collections::HashMap<String, String> = [
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "0ecb735cc91e"),
            ("CNI_NETNS", "/run/netns/x"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", "/opt/cni/bin"),
            ("CNI_ARGS", cni_args),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        CmdArgs::from_env(cni_skel::Command::Add, &env).unwrap()
    }

    fn identity(cni_args: &str) -> (String, String) {
        pod_identity(&args(cni_args))
    }

    #[test]
    fn cri_runtimes_name_the_pod() {
        let cri = "IgnoreUnknown=1;K8S_POD_NAMESPACE=web;K8S_POD_NAME=db-0;K8S_POD_INFRA_CONTAINER_ID=0ecb";
        assert_eq!(identity(cri), ("web".into(), "db-0".into()));
        // Not rewritten even when invalid: twilld reports it rather than merging two pods.
        assert_eq!(identity("K8S_POD_NAMESPACE=web;K8S_POD_NAME=Db_0"), ("web".into(), "Db_0".into()));
        assert_eq!(identity("K8S_POD_NAMESPACE=web"), ("web".into(), "0ecb735cc91e".into()));
    }

    #[test]
    fn podman_container_names_become_pod_names() {
        // What podman 4.3's CNI backend passes (measured by crates/cli/tests/lab_runtimes.rs).
        assert_eq!(identity("IgnoreUnknown=1;K8S_POD_NAME=web-1"), ("default".into(), "web-1".into()));
        assert_eq!(
            identity("IgnoreUnknown=1;K8S_POD_NAME=gracious_bartik"),
            ("default".into(), "gracious-bartik".into())
        );
        assert_eq!(identity("K8S_POD_NAME=Web_1.a"), ("default".into(), "web-1.a".into()));
        // Still not a name (ends in '-'): the container ID names it.
        assert_eq!(identity("K8S_POD_NAME=web_"), ("default".into(), "0ecb735cc91e".into()));
    }

    #[test]
    fn no_args_is_the_container_id_in_default() {
        // What `ctr run --cni` passes: nothing.
        assert_eq!(identity(""), ("default".into(), "0ecb735cc91e".into()));
    }
}
