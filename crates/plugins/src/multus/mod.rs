//! `multus`: several networks for one pod, configured the way Multus users write it — a
//! drop-in for Multus's thin plugin, with NetworkAttachmentDefinitions and the pods'
//! annotations in the cluster datastore instead of the Kubernetes API (docs/plugins/multus.md,
//! docs/adr/0014-multus-reads-the-datastore-from-its-own-binary.md).
//!
//! ADD plans everything first — the cluster network on the runtime's interface, the
//! always-attached networks, the pod's `k8s.v1.cni.cncf.io/networks` selections — so a bad
//! annotation or a missing definition attaches nothing. It then writes the delegate cache
//! and runs each network through the runtime side (`cni_exec`, libcni's behaviour: chaining,
//! result cache in `cniDir`), rolling back what it attached when one fails. The runtime gets
//! the cluster network's result with every attachment's interfaces and addresses; the node's
//! journal gets the network-status. DEL, CHECK and GC work from the cache alone.
//!
//! | code | meaning |
//! |------|---------|
//! | 4    | `CNI_NETNS` missing for ADD |
//! | 5    | the delegate cache or the journal could not be written; the datastore failed otherwise |
//! | 6    | an unreadable delegate cache |
//! | 7    | invalid config, annotation, reference or definition; no cached attachment for CHECK |
//! | 11   | the datastore is unreachable; the readiness indicator file did not appear |
//! | 50   | STATUS: readiness file missing, datastore unreachable, or a delegate not ready |
//! | any  | a delegate's own error, its message prefixed with the network and interface |

mod add;
mod cache;
mod check;
mod conf;
mod exec;
mod journal;
mod log;
mod plan;
mod pod;
mod resolve;
mod result;
mod route;
mod selection;
mod store;
mod teardown;

use std::path::Path;
use std::time::{Duration, Instant};

use cni_exec::{Runtime, RuntimeConf};
use cni_skel::{CmdArgs, Plugin};
use cni_spec::{CniResult, Error, ErrorCode, NetConf, Version};

use conf::MultusConf;
use plan::Delegate;

pub struct Multus;

impl Plugin for Multus {
    fn supported_versions(&self) -> &[Version] {
        &crate::meta::CHAINED_VERSIONS
    }

    fn add(&self, args: &CmdArgs, conf: &NetConf) -> Result<CniResult, Error> {
        add::add(args, conf)
    }

    fn check(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        check::check(args, conf)
    }

    fn del(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        teardown::del(args, conf)
    }

    fn gc(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        teardown::gc(args, conf)
    }

    fn status(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        check::status(args, conf)
    }
}

/// The runtime side multus drives its delegates with: plugins on `binDir` then CNI_PATH,
/// results cached in `cniDir`.
fn runtime(conf: &MultusConf, args: &CmdArgs) -> Runtime {
    Runtime::with_exec(conf.plugin_path(&args.path), &conf.cni_dir, Box::new(exec::DelegateExec::default()))
}

/// What one delegate is run with.
fn runtime_conf(container_id: &str, netns: &str, cni_args: &[(String, String)], d: &Delegate) -> RuntimeConf {
    RuntimeConf {
        container_id: container_id.to_string(),
        netns: netns.to_string(),
        ifname: d.ifname.clone(),
        args: cni_args.to_vec(),
        capability_args: d.capability_args.clone(),
    }
}

/// A delegate's failure, its code kept, its message saying which attachment failed.
fn delegate_error(d: &Delegate, verb: &str, e: &cni_exec::Error) -> Error {
    let cni = e.to_cni();
    Error { msg: format!("multus: {verb} {}: {}", d.describe(), cni.msg), ..cni }
}

/// Waits for `readinessindicatorfile` (Multus polls for 45 s).
fn wait_ready(path: Option<&Path>, limit: Duration) -> Result<(), Error> {
    let Some(path) = path else { return Ok(()) };
    let started = Instant::now();
    while !path.exists() {
        if started.elapsed() >= limit {
            return Err(Error::new(
                ErrorCode::TryAgainLater,
                format!(
                    "multus: have you checked that your default network is ready? readinessindicatorfile {} does not exist after {}s",
                    path.display(),
                    limit.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
