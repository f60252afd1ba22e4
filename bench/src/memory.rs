//! Peak memory of one plugin process: the runtime executes each plugin through the metering
//! launcher ([`crate::meter`]), which reaps it with wait4(2) and reports `ru_maxrss`. For a
//! reaped child the kernel reports the larger of its own peak and that of the children it
//! waited for, so `bridge` ADD covers the `host-local` it delegates to; the bridge without
//! IPAM and host-local run on its own show the two halves.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use cni_exec::{Exec, InvokeArgs, LoadedList, Runtime, find_in_path};
use netns::NetNs;

use crate::chains::{Chain, bridge_without_ipam, ipam_stdin};
use crate::lab::Lab;
use crate::meter::{Log, MeteredExec};
use crate::node::Node;
use crate::provision::{Impl, Provision, order};
use crate::signals;

/// What one measured run executes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Run {
    /// The minimal chain: `bridge` ADD, which runs `host-local`.
    BridgeWithHostLocal,
    /// `bridge` without IPAM: the bridge process alone.
    BridgeAlone,
    /// `host-local` ADD executed directly with the bridge's IPAM configuration.
    HostLocal,
    /// The Kubernetes chain's `portmap` ADD.
    Portmap,
    /// The Kubernetes chain's `bandwidth` ADD.
    Bandwidth,
}

pub const RUNS: [Run; 5] =
    [Run::BridgeWithHostLocal, Run::BridgeAlone, Run::HostLocal, Run::Portmap, Run::Bandwidth];

impl Run {
    pub fn label(self) -> &'static str {
        match self {
            Run::BridgeWithHostLocal => "`bridge` ADD with `host-local` (minimal chain)",
            Run::BridgeAlone => "`bridge` ADD without IPAM (the bridge process alone)",
            Run::HostLocal => "`host-local` ADD on its own",
            Run::Portmap => "`portmap` ADD (kubernetes chain)",
            Run::Bandwidth => "`bandwidth` ADD (kubernetes chain)",
        }
    }

    /// A few words for a table cell.
    pub fn short(self) -> &'static str {
        match self {
            Run::BridgeWithHostLocal => "bridge+host-local",
            Run::BridgeAlone => "bridge",
            Run::HostLocal => "host-local",
            Run::Portmap => "portmap",
            Run::Bandwidth => "bandwidth",
        }
    }
}

/// Peak RSS (KiB) samples per implementation and run; errors of runs that failed.
#[derive(Clone, Debug, Default)]
pub struct MemoryResult {
    pub runs: usize,
    /// `true` through the same launcher: the lowest peak this method can report.
    pub floor_kib: Vec<u64>,
    pub max_rss_kib: BTreeMap<(Impl, Run), Vec<u64>>,
    pub errors: BTreeMap<(Impl, Run), String>,
}

/// One implementation's metered runtime and what it needs.
struct Meter<'n, 'l> {
    node: &'n Node<'l>,
    runtime: Runtime,
    exec: MeteredExec,
    log: Log,
    l2: LoadedList,
    /// CNI_PATH: the implementation's bin dir.
    path: Vec<PathBuf>,
}

pub fn run(lab: &Lab, prov: &Provision, runs: usize) -> Result<MemoryResult> {
    let nodes = [Node::new(lab, prov, "mem", Impl::Twill)?, Node::new(lab, prov, "mem", Impl::Reference)?];
    let meters = nodes.iter().map(|n| meter(n, prov)).collect::<Result<Vec<_>>>()?;
    let mut result = MemoryResult { runs, ..Default::default() };
    for i in 0..runs {
        if let Some(kib) = floor(&meters[0])? {
            result.floor_kib.push(kib);
        }
        for imp in order(i) {
            for what in RUNS {
                signals::check()?;
                if result.errors.contains_key(&(imp, what)) {
                    continue;
                }
                match measure(&meters[imp.index()], what, i)? {
                    Ok(kib) => result.max_rss_kib.entry((imp, what)).or_default().push(kib),
                    Err(e) => drop(result.errors.insert((imp, what), e)),
                }
            }
        }
    }
    Ok(result)
}

fn meter<'n, 'l>(node: &'n Node<'l>, prov: &Provision) -> Result<Meter<'n, 'l>> {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let scratch = node.dir().join("rss");
    let exec = |log: &Log| -> Result<MeteredExec> {
        Ok(MeteredExec::new(NetNs::open(node.host().path())?, log.clone(), scratch.clone())?)
    };
    let path = vec![prov.bin_dir(node.imp).to_path_buf()];
    let runtime = Runtime::with_exec(path.clone(), node.dir().join("cache-mem"), Box::new(exec(&log)?));
    Ok(Meter { node, runtime, exec: exec(&log)?, log, l2: bridge_without_ipam()?, path })
}

/// One run of `what` in a fresh pod, torn down afterwards: the peak RSS of the ADD process.
fn measure(m: &Meter, what: Run, i: usize) -> Result<Result<u64, String>> {
    let node = m.node;
    let pod = node.pod(&format!("m{}-{i}", what as u8))?;
    let chain =
        if matches!(what, Run::Portmap | Run::Bandwidth) { Chain::Kubernetes } else { Chain::Minimal };
    let rt = node.rt(&pod, chain, 30000 + i as u16);
    m.log.lock().unwrap_or_else(|p| p.into_inner()).clear();
    let outcome = match what {
        Run::HostLocal => ipam_alone(m, &rt),
        Run::BridgeAlone => cycle(&m.runtime, &m.l2, &rt),
        _ => cycle(&m.runtime, node.list(chain), &rt),
    };
    node.remove_pod(&pod);
    let plugin = match what {
        Run::BridgeWithHostLocal | Run::BridgeAlone => "bridge",
        Run::HostLocal => "host-local",
        Run::Portmap => "portmap",
        Run::Bandwidth => "bandwidth",
    };
    let log = std::mem::take(&mut *m.log.lock().unwrap_or_else(|p| p.into_inner()));
    let peak = log.iter().find(|(name, cmd, _)| name == plugin && *cmd == "ADD").map(|(_, _, kib)| *kib);
    Ok(outcome.and_then(|()| peak.ok_or_else(|| format!("no {plugin} ADD was recorded"))))
}

/// `true` through the launcher, inside the fake host.
fn floor(m: &Meter) -> Result<Option<u64>> {
    let program = find_in_path("true", &["/usr/bin".into(), "/bin".into()])?;
    m.log.lock().unwrap_or_else(|p| p.into_inner()).clear();
    let args = InvokeArgs { command: "VERSION", ..Default::default() };
    m.exec.exec(&program, b"", &args)?;
    let log = std::mem::take(&mut *m.log.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(log.first().map(|(_, _, kib)| *kib))
}

fn cycle(runtime: &Runtime, net: &LoadedList, rt: &cni_exec::RuntimeConf) -> Result<(), String> {
    let added = runtime.add(net, rt).map(drop).map_err(|e| format!("ADD: {e}"));
    let deleted = runtime.del(net, rt).map_err(|e| format!("DEL: {e}"));
    added.and(deleted)
}

/// host-local ADD then DEL, executed directly the way `bridge` delegates to it.
fn ipam_alone(m: &Meter, rt: &cni_exec::RuntimeConf) -> Result<(), String> {
    let stdin = ipam_stdin(Chain::Minimal, &m.node.dir().join("ipam")).to_string();
    let path = m.path.clone();
    let plugin = find_in_path("host-local", &path).map_err(|e| e.to_string())?;
    let args = |command| InvokeArgs {
        command,
        container_id: rt.container_id.clone(),
        netns: rt.netns.clone(),
        ifname: rt.ifname.clone(),
        args: Vec::new(),
        path: path.clone(),
    };
    let added =
        m.exec.exec(&plugin, stdin.as_bytes(), &args("ADD")).map(drop).map_err(|e| format!("ADD: {e}"));
    let deleted =
        m.exec.exec(&plugin, stdin.as_bytes(), &args("DEL")).map(drop).map_err(|e| format!("DEL: {e}"));
    added.and(deleted)
}
