//! Where twill's plugin time goes: a few pods of each chain on a twill node whose runtime
//! starts every plugin under `strace -f -ttt -T -yy`, each run's time split by what it waited
//! for ([`crate::strace_split`]): process start, rtnetlink, nf_tables and conntrack, IPAM
//! file I/O, sysctls, namespace threads, other system calls, and the rest (user space).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cni_exec::{Error as ExecError, Exec, InvokeArgs, RawExec, find_in_path, plugin_failure};

use crate::chains::{CHAINS, Chain};
use crate::lab::Lab;
use crate::node::{Node, PluginRun};
use crate::provision::{Impl, Provision};
use crate::signals;
use crate::strace_split::split;

/// Traced plugin runs, per chain.
#[derive(Clone, Debug, Default)]
pub struct AttribResult {
    pub pods: usize,
    pub runs: Vec<(Chain, PluginRun)>,
}

/// Runs each plugin under strace in the fake host and splits its trace.
struct StraceExec {
    inner: RawExec,
    dir: PathBuf,
    seq: AtomicUsize,
    log: Arc<Mutex<Vec<PluginRun>>>,
}

impl Exec for StraceExec {
    fn find(&self, plugin_type: &str, path: &[PathBuf]) -> Result<PathBuf, ExecError> {
        find_in_path(plugin_type, path)
    }

    fn exec(&self, plugin: &Path, stdin: &[u8], args: &InvokeArgs) -> Result<Vec<u8>, ExecError> {
        let spawn_err = |source| ExecError::Spawn { plugin: plugin.to_path_buf(), source };
        let trace = self.dir.join(format!("trace-{}", self.seq.fetch_add(1, Ordering::Relaxed)));
        let mut cmd = Command::new("strace");
        cmd.args(["-f", "-qq", "-ttt", "-T", "-yy", "-o"]).arg(&trace).arg(plugin);
        if let Some(ns) = &self.inner.netns {
            ns.spawn_inside(&mut cmd);
        }
        cmd.env_clear()
            .envs(args.env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(spawn_err)?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin).map_err(spawn_err)?;
        }
        let out = child.wait_with_output().map_err(spawn_err)?;
        let took = started.elapsed();
        let text = std::fs::read_to_string(&trace).unwrap_or_default();
        let _ = std::fs::remove_file(&trace);
        let run = PluginRun {
            plugin: plugin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            command: args.command,
            took,
            split: Some(split(&text, "/ipam/")),
        };
        self.log.lock().unwrap_or_else(|p| p.into_inner()).push(run);
        match out.status.success() {
            true => Ok(out.stdout),
            false => Err(plugin_failure(plugin, &out.status.to_string(), &out.stdout)),
        }
    }
}

/// `pods` traced pods per chain (ADD, CHECK, DEL each), after a warm-up pod.
pub fn run(lab: &Lab, prov: &Provision, pods: usize) -> Result<AttribResult> {
    let strace = Command::new("strace").arg("-V").output();
    if !strace.is_ok_and(|o| o.status.success()) {
        bail!("strace is needed to attribute time (scripts/install-deps.sh installs it)");
    }
    let dir = lab.dir().join("attr-traces");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let node = Node::with_exec(lab, prov, "attr", Impl::Twill, |inner, log| {
        Box::new(StraceExec { inner, dir, seq: AtomicUsize::new(0), log })
    })?;
    let mut result = AttribResult { pods, runs: Vec::new() };
    for chain in CHAINS {
        if let Err(e) = node.warm_up(chain, &format!("w{}", chain.short())) {
            bail!("attribution warm-up on the {} chain: {e}", chain.short());
        }
        for i in 0..pods {
            signals::check()?;
            let pod = node.pod(&format!("{}{i}", &chain.short()[..1]))?;
            let rt = node.rt(&pod, chain, 31000 + i as u16);
            let net = node.list(chain);
            let outcome = node
                .runtime()
                .add(net, &rt)
                .and_then(|_| node.runtime().check(net, &rt))
                .and_then(|()| node.runtime().del(net, &rt));
            node.remove_pod(&pod);
            if let Err(e) = outcome {
                bail!("traced pod on the {} chain: {e}", chain.short());
            }
            result.runs.extend(node.take_runs().into_iter().map(|r| (chain, r)));
        }
    }
    Ok(result)
}
