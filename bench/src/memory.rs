//! Peak memory of one plugin process: the runtime executes each plugin and reaps it with
//! wait4(2), whose rusage carries the maximum resident set size. The kernel reports for a
//! reaped child the larger of its own peak and that of the children it waited for, so
//! `bridge` ADD covers the `host-local` it delegates to.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use cni_exec::{Error as ExecError, Exec, InvokeArgs, Runtime, find_in_path, plugin_failure};
use netns::NetNs;

use crate::chains::{CHAINS, Chain};
use crate::lab::Lab;
use crate::node::Node;
use crate::provision::{Impl, Provision, order};
use crate::signals;

/// Peak RSS (KiB) of each plugin's ADD, per implementation: `(impl, plugin) -> samples`.
#[derive(Clone, Debug, Default)]
pub struct MemoryResult {
    pub runs: usize,
    pub max_rss_kib: BTreeMap<(Impl, String), Vec<u64>>,
    pub errors: BTreeMap<(Impl, Chain), String>,
}

/// An executor like RawExec that reaps with wait4 and records the child's peak RSS.
struct MeteredExec {
    host: NetNs,
    log: Arc<Mutex<Vec<(String, &'static str, u64)>>>,
}

impl Exec for MeteredExec {
    fn find(&self, plugin_type: &str, path: &[PathBuf]) -> Result<PathBuf, ExecError> {
        find_in_path(plugin_type, path)
    }

    fn exec(&self, plugin: &Path, stdin: &[u8], args: &InvokeArgs) -> Result<Vec<u8>, ExecError> {
        let io = |source| ExecError::Spawn { plugin: plugin.to_path_buf(), source };
        let mut cmd = Command::new(plugin);
        self.host.spawn_inside(&mut cmd);
        cmd.envs(args.env()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().map_err(io)?;
        if let Some(mut input) = child.stdin.take()
            && let Err(e) = input.write_all(stdin)
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            return Err(io(e));
        }
        let mut out = Vec::new();
        if let Some(mut stdout) = child.stdout.take() {
            stdout.read_to_end(&mut out).map_err(io)?;
        }
        let (status, max_rss) = wait4(child.id()).map_err(io)?;
        let name = plugin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        self.log.lock().unwrap_or_else(|p| p.into_inner()).push((name, args.command, max_rss));
        match status {
            Ok(()) => Ok(out),
            Err(status) => Err(plugin_failure(plugin, &status, &out)),
        }
    }
}

/// Reaps `pid`: its exit (Ok, or the failure as text) and `ru_maxrss` in KiB.
fn wait4(pid: u32) -> std::io::Result<(Result<(), String>, u64)> {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value for the kernel to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own unreaped child; both pointers are valid for the call.
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if r >= 0 {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    let exit = if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else if libc::WIFEXITED(status) {
        Err(format!("exit status: {}", libc::WEXITSTATUS(status)))
    } else {
        Err(format!("signal: {}", libc::WTERMSIG(status)))
    };
    Ok((exit, u64::try_from(usage.ru_maxrss).unwrap_or(0)))
}

pub fn run(lab: &Lab, prov: &Provision, runs: usize) -> Result<MemoryResult> {
    let nodes = [Node::new(lab, prov, "mem", Impl::Twill)?, Node::new(lab, prov, "mem", Impl::Reference)?];
    let log = Arc::new(Mutex::new(Vec::new()));
    let runtimes = nodes
        .iter()
        .map(|n| {
            let exec = MeteredExec { host: NetNs::open(n.host().path())?, log: log.clone() };
            Ok(Runtime::with_exec(vec![prov.bin_dir(n.imp).to_path_buf()], n.dir().join("cache-mem"), Box::new(exec)))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut result = MemoryResult { runs, ..Default::default() };
    for i in 0..runs {
        for imp in order(i) {
            for chain in CHAINS {
                signals::check()?;
                if result.errors.contains_key(&(imp, chain)) {
                    continue;
                }
                let node = &nodes[imp.index()];
                log.lock().unwrap_or_else(|p| p.into_inner()).clear();
                if let Err(e) = one_add(node, &runtimes[imp.index()], chain, i)? {
                    result.errors.insert((imp, chain), e);
                    continue;
                }
                let adds = std::mem::take(&mut *log.lock().unwrap_or_else(|p| p.into_inner()));
                for (plugin, _, kib) in adds.into_iter().filter(|(_, cmd, _)| *cmd == "ADD") {
                    // The minimal chain's bridge is the one the headline number is about.
                    if chain == Chain::Minimal || plugin != "bridge" {
                        result.max_rss_kib.entry((imp, plugin)).or_default().push(kib);
                    }
                }
            }
        }
    }
    Ok(result)
}

/// ADD then DEL of one pod through the metered runtime.
fn one_add(node: &Node, runtime: &Runtime, chain: Chain, i: usize) -> Result<Result<(), String>> {
    let pod = node.pod(&format!("m{}{i}", &chain.short()[..1]))?;
    let rt = node.rt(&pod, chain, 30000 + i as u16);
    let net = node.list(chain);
    let added = runtime.add(net, &rt).map(drop).map_err(|e| format!("ADD: {e}"));
    let deleted = runtime.del(net, &rt).map_err(|e| format!("DEL: {e}"));
    node.remove_pod(&pod);
    Ok(added.and(deleted))
}
