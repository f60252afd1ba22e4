//! Per-verb latency as a runtime sees it: ADD, CHECK and DEL of a whole chain through
//! cni-exec, plugin process start included, one pod at a time on a warm node. Both
//! implementations and both chains are measured in the same loop, the implementation going
//! first alternating every iteration. twill also runs the minimal chain with `spoofchk` on
//! in the same iterations, for what anti-spoofing costs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use cni_exec::{Exec, InvokeArgs, RawExec};
use netns::NetNs;

use crate::chains::{CHAINS, Chain};
use crate::floors::{self, Floors};
use crate::lab::Lab;
use crate::node::{Node, PluginRun};
use crate::provision::{CNI_VERSION, Impl, Provision, order};
use crate::signals;

/// A series gives up after this many failed pods (the errors are reported).
const MAX_FAILURES: usize = 3;

/// Samples of one implementation on one chain.
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub add: Vec<Duration>,
    pub check: Vec<Duration>,
    pub del: Vec<Duration>,
    /// ADD + DEL of the same pod: the whole-chain cost of one pod's life.
    pub add_del: Vec<Duration>,
    /// Each plugin execution of the measured iterations, for the per-plugin breakdown.
    pub runs: Vec<PluginRun>,
    /// Failed ADD or DEL: the pod's samples are dropped.
    pub failures: Vec<String>,
    /// Failed CHECK: ADD and DEL of that pod still count.
    pub check_failures: Vec<String>,
}

impl Series {
    pub fn gave_up(&self) -> bool {
        self.failures.len() >= MAX_FAILURES
    }
}

/// The latency part's outcome.
#[derive(Clone, Debug, Default)]
pub struct LatencyResult {
    pub iterations: usize,
    pub warmup: usize,
    pub series: BTreeMap<(Impl, Chain), Series>,
    /// `bridge` answering VERSION: the cost of starting the plugin process at all.
    pub exec_floor: BTreeMap<Impl, Vec<Duration>>,
    /// The kernel's floors (veth create and delete, IFB delete), once per iteration.
    pub floors: Floors,
}

struct Timed {
    add: Duration,
    check: Result<Duration, String>,
    del: Duration,
    runs: Vec<PluginRun>,
}

/// Runs `warmup` discarded and `iterations` measured rounds.
pub fn run(lab: &Lab, prov: &Provision, iterations: usize, warmup: usize) -> Result<LatencyResult> {
    let nodes = [Node::new(lab, prov, "lat", Impl::Twill)?, Node::new(lab, prov, "lat", Impl::Reference)?];
    let mut result = LatencyResult { iterations, warmup, ..Default::default() };
    for i in 0..warmup + iterations {
        signals::check()?;
        let measured = i >= warmup;
        for imp in order(i) {
            let node = &nodes[imp.index()];
            let guarded = (imp == Impl::Twill).then_some(Chain::Guarded);
            for chain in CHAINS.into_iter().chain(guarded) {
                let series = result.series.entry((imp, chain)).or_default();
                if series.gave_up() {
                    continue;
                }
                match one_pod(node, chain, i)? {
                    Ok(t) if measured => record(series, t),
                    Ok(_) => {}
                    Err(e) => series.failures.push(e),
                }
            }
            let floor = exec_floor(node, prov, imp)?;
            if measured {
                result.exec_floor.entry(imp).or_default().push(floor);
            }
        }
        if measured {
            floors::sample(lab, &mut result.floors, i)?;
        }
        if (i + 1) % 25 == 0 {
            eprintln!("  latency: {}/{} iterations", i + 1, warmup + iterations);
        }
    }
    Ok(result)
}

fn record(series: &mut Series, t: Timed) {
    series.add.push(t.add);
    match t.check {
        Ok(check) => series.check.push(check),
        Err(e) => series.check_failures.push(e),
    }
    series.del.push(t.del);
    series.add_del.push(t.add + t.del);
    series.runs.extend(t.runs);
}

/// One pod's ADD, CHECK, DEL, timed (a failed CHECK is kept with the pod's other samples). The outer error is the bench's own (no namespace); the
/// inner one is a plugin failure, reported and counted.
fn one_pod(node: &Node, chain: Chain, i: usize) -> Result<Result<Timed, String>> {
    let pod = node.pod(&format!("{}{i}", &chain.short()[..1]))?;
    let rt = node.rt(&pod, chain, 30000 + (i % 20000) as u16);
    let net = node.list(chain);
    let runtime = node.runtime();
    node.take_runs();
    // On a thread inside the fake host, as a runtime lives in the host's namespace: the
    // executor then starts each plugin right there, not from a thread made to enter it.
    let timed = node.host().run(|| {
        let start = Instant::now();
        runtime.add(net, &rt).map_err(|e| format!("ADD: {e}"))?;
        let add = start.elapsed();
        let start = Instant::now();
        let check = runtime.check(net, &rt).map(|()| start.elapsed()).map_err(|e| format!("CHECK: {e}"));
        let start = Instant::now();
        runtime.del(net, &rt).map_err(|e| format!("DEL: {e}"))?;
        let del = start.elapsed();
        Ok(Timed { add, check, del, runs: node.take_runs() })
    })?;
    if timed.is_err() {
        // What a runtime does after a failed ADD: DEL, which must be idempotent.
        let _ = runtime.del(net, &rt);
    }
    node.remove_pod(&pod);
    Ok(timed)
}

/// Starts the implementation's `bridge` for VERSION inside the fake host, through the same
/// executor the runtime uses.
fn exec_floor(node: &Node, prov: &Provision, imp: Impl) -> Result<Duration> {
    let exec = RawExec::in_netns(NetNs::open(node.host().path())?);
    let plugin: PathBuf = prov.bin_dir(imp).join("bridge");
    let args = InvokeArgs { command: "VERSION", ..Default::default() };
    let stdin = format!("{{\"cniVersion\":\"{CNI_VERSION}\"}}");
    node.host().run(|| {
        let start = Instant::now();
        exec.exec(&plugin, stdin.as_bytes(), &args)?;
        Ok(start.elapsed())
    })?
}
