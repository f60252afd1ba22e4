//! A fake node for one implementation: its own host network namespace (where the plugins run
//! and create bridges, veths, firewall state and qdiscs), its own IPAM data and result cache,
//! and a cni-exec runtime executing the real binaries from its bin dir — the same path a
//! container runtime takes, process start included. Pods are further namespaces.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cni_exec::{Error as ExecError, Exec, InvokeArgs, LoadedList, RawExec, Runtime, RuntimeConf};
use netns::NetNs;

use crate::chains::Chain;
use crate::lab::Lab;
use crate::provision::{Impl, Provision};

/// One plugin execution as the runtime saw it.
#[derive(Clone, Debug)]
pub struct PluginRun {
    pub plugin: String,
    pub command: &'static str,
    pub took: Duration,
    /// Where its time went, when it ran traced (the attribution part).
    pub split: Option<crate::strace_split::Split>,
}

/// The runtime's own executor (RawExec), timing each plugin it starts.
struct TimedExec {
    inner: RawExec,
    log: Arc<Mutex<Vec<PluginRun>>>,
}

impl Exec for TimedExec {
    fn find(&self, plugin_type: &str, path: &[PathBuf]) -> Result<PathBuf, ExecError> {
        self.inner.find(plugin_type, path)
    }

    fn exec(&self, plugin: &Path, stdin: &[u8], args: &InvokeArgs) -> Result<Vec<u8>, ExecError> {
        let start = Instant::now();
        let out = self.inner.exec(plugin, stdin, args);
        let run = PluginRun {
            plugin: plugin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            command: args.command,
            took: start.elapsed(),
            split: None,
        };
        self.log.lock().unwrap_or_else(|p| p.into_inner()).push(run);
        out
    }
}

/// A fake host running one implementation's plugins.
pub struct Node<'l> {
    pub imp: Impl,
    lab: &'l Lab,
    part: &'static str,
    host_name: String,
    host: NetNs,
    dir: PathBuf,
    runtime: Runtime,
    minimal: LoadedList,
    kubernetes: LoadedList,
    guarded: LoadedList,
    log: Arc<Mutex<Vec<PluginRun>>>,
}

/// A pod: a network namespace and the id it is attached under.
pub struct Pod {
    pub id: String,
    pub ns_name: String,
}

impl<'l> Node<'l> {
    /// Creates host netns `twb-<pid>-<part>-<impl>-host` and the node's directories.
    pub fn new(lab: &'l Lab, prov: &Provision, part: &'static str, imp: Impl) -> Result<Node<'l>> {
        Node::with_exec(lab, prov, part, imp, |inner, log| Box::new(TimedExec { inner, log }))
    }

    /// Like [`Node::new`], with the runtime's executor built by `exec` from the plain one
    /// (inside the fake host) and the node's run log.
    pub fn with_exec(
        lab: &'l Lab,
        prov: &Provision,
        part: &'static str,
        imp: Impl,
        exec: impl FnOnce(RawExec, Arc<Mutex<Vec<PluginRun>>>) -> Box<dyn Exec>,
    ) -> Result<Node<'l>> {
        let (host_name, host) = lab.create_ns(&format!("{part}-{}-host", imp.tag()))?;
        let dir = lab.dir().join(format!("{part}-{}", imp.tag()));
        let node = |host: NetNs| -> Result<Node<'l>> {
            std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
            let log = Arc::new(Mutex::new(Vec::new()));
            let exec = exec(RawExec::in_netns(NetNs::open(host.path())?), log.clone());
            let runtime = Runtime::with_exec(vec![prov.bin_dir(imp).to_path_buf()], dir.join("cache"), exec);
            let minimal = Chain::Minimal.load(&dir.join("ipam"))?;
            let kubernetes = Chain::Kubernetes.load(&dir.join("ipam"))?;
            let guarded = Chain::Guarded.load(&dir.join("ipam"))?;
            let host_name = host_name.clone();
            let dir = dir.clone();
            Ok(Node { imp, lab, part, host_name, host, dir, runtime, minimal, kubernetes, guarded, log })
        };
        node(host).inspect_err(|_| lab.remove_ns(&host_name))
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub fn host(&self) -> &NetNs {
        &self.host
    }

    pub fn host_name(&self) -> &str {
        &self.host_name
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The loaded network list of `chain`.
    pub fn list(&self, chain: Chain) -> &LoadedList {
        match chain {
            Chain::Minimal => &self.minimal,
            Chain::Kubernetes => &self.kubernetes,
            Chain::Guarded => &self.guarded,
        }
    }

    /// A fresh pod namespace `twb-<pid>-<part>-<impl>-<id>`.
    pub fn pod(&self, id: &str) -> Result<Pod> {
        let (ns_name, _) = self.lab.create_ns(&format!("{}-{}-{id}", self.part, self.imp.tag()))?;
        Ok(Pod { id: id.to_string(), ns_name })
    }

    /// Removes a pod's namespace (after DEL, as a runtime does).
    pub fn remove_pod(&self, pod: &Pod) {
        self.lab.remove_ns(&pod.ns_name);
    }

    /// The runtime's view of attaching `pod` to `chain` with `host_port`.
    pub fn rt(&self, pod: &Pod, chain: Chain, host_port: u16) -> RuntimeConf {
        RuntimeConf {
            container_id: pod.id.clone(),
            netns: netns::named_path(&pod.ns_name).display().to_string(),
            ifname: "eth0".into(),
            args: Vec::new(),
            capability_args: chain.capability_args(host_port),
        }
    }

    /// ADD and DEL of one throw-away pod: creates the bridge and the plugins' shared tables,
    /// as on any node that has run a pod before. The inner error is the plugins'.
    pub fn warm_up(&self, chain: Chain, id: &str) -> Result<Result<(), String>> {
        let pod = self.pod(id)?;
        let rt = self.rt(&pod, chain, 19999);
        let net = self.list(chain);
        let added = self.runtime.add(net, &rt).map(drop).map_err(|e| format!("ADD: {e}"));
        let deleted = self.runtime.del(net, &rt).map_err(|e| format!("DEL: {e}"));
        self.remove_pod(&pod);
        self.take_runs();
        Ok(added.and(deleted))
    }

    /// Plugin executions recorded since the last call.
    pub fn take_runs(&self) -> Vec<PluginRun> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A netlink handle in the fake host.
    pub fn handle(&self) -> Result<nl::Handle> {
        nl::Handle::in_netns(&self.host).with_context(|| format!("netlink in {}", self.host_name))
    }
}

impl Drop for Node<'_> {
    fn drop(&mut self) {
        self.lab.remove_ns(&self.host_name);
    }
}
