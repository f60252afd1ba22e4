//! Churn: K workers attach and detach pods through the Kubernetes chain as fast as they can,
//! each keeping a few pods alive so ADDs and DELs of different pods overlap. Counts pods/s,
//! duplicate addresses among live pods, failures, and what is left on the node afterwards.
//! Pod namespaces are made before the clock starts (a runtime's own work, the same for both).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::chains::Chain;
use crate::inventory::{Inventory, Leftovers, settle};
use crate::lab::Lab;
use crate::node::{Node, Pod};
use crate::provision::{Impl, Provision, order};
use crate::signals;

/// How a churn run is shaped.
#[derive(Clone, Copy, Debug)]
pub struct ChurnConf {
    pub workers: usize,
    pub pods: usize,
    pub rounds: usize,
    /// Pods each worker keeps alive before deleting its oldest.
    pub live_per_worker: usize,
    pub chain: Chain,
}

/// One round of one implementation.
#[derive(Clone, Debug, Default)]
pub struct ChurnRound {
    pub wall: Duration,
    pub attached: usize,
    pub add: Vec<Duration>,
    pub del: Vec<Duration>,
    pub duplicates: Vec<String>,
    pub failures: Vec<String>,
}

impl ChurnRound {
    pub fn pods_per_sec(&self) -> f64 {
        self.attached as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// All rounds of one implementation, and the node's leftovers at the end.
#[derive(Clone, Debug, Default)]
pub struct ChurnSide {
    pub rounds: Vec<ChurnRound>,
    pub leftovers: Option<Leftovers>,
    pub error: Option<String>,
}

impl ChurnSide {
    /// Median pods/s over the rounds.
    pub fn pods_per_sec(&self) -> Option<f64> {
        crate::stats::median(&self.rounds.iter().map(ChurnRound::pods_per_sec).collect::<Vec<_>>())
    }

    /// ADD (or DEL) latencies of every round.
    pub fn latencies(&self, del: bool) -> Vec<Duration> {
        self.rounds.iter().flat_map(|r| if del { &r.del } else { &r.add }).copied().collect()
    }

    /// Sum of `f` over the rounds.
    pub fn count(&self, f: fn(&ChurnRound) -> usize) -> usize {
        self.rounds.iter().map(f).sum()
    }
}

#[derive(Clone, Debug)]
pub struct ChurnResult {
    pub conf: ChurnConf,
    pub sides: BTreeMap<Impl, ChurnSide>,
}

/// Shared between the workers of one round.
struct Round<'n, 'l> {
    node: &'n Node<'l>,
    chain: Chain,
    pods: Vec<Pod>,
    next: AtomicUsize,
    live: Mutex<HashMap<IpAddr, String>>,
    out: Mutex<ChurnRound>,
}

pub fn run(lab: &Lab, prov: &Provision, conf: ChurnConf) -> Result<ChurnResult> {
    let nodes =
        [Node::new(lab, prov, "churn", Impl::Twill)?, Node::new(lab, prov, "churn", Impl::Reference)?];
    let mut sides: BTreeMap<Impl, ChurnSide> = BTreeMap::new();
    let mut baselines: BTreeMap<Impl, Inventory> = BTreeMap::new();
    for node in &nodes {
        let side = sides.entry(node.imp).or_default();
        match node.warm_up(conf.chain, "cw")? {
            Ok(()) => {
                baselines.insert(node.imp, Inventory::take(node)?);
            }
            Err(e) => side.error = Some(format!("warm-up pod: {e}")),
        }
    }
    for r in 0..conf.rounds {
        for imp in order(r) {
            signals::check()?;
            if sides.get(&imp).is_some_and(|s| s.error.is_some()) {
                continue;
            }
            let round = one_round(&nodes[imp.index()], conf, r)?;
            eprintln!("  churn round {r} {}: {:.1} pods/s", imp.label(), round.pods_per_sec());
            sides.entry(imp).or_default().rounds.push(round);
        }
    }
    for node in &nodes {
        if let Some(base) = baselines.get(&node.imp) {
            let left = settle(node, base, Duration::from_secs(3))?;
            sides.entry(node.imp).or_default().leftovers = Some(left);
        }
    }
    Ok(ChurnResult { conf, sides })
}

fn one_round(node: &Node, conf: ChurnConf, r: usize) -> Result<ChurnRound> {
    let mut pods = Vec::with_capacity(conf.pods);
    let made = (0..conf.pods).try_for_each(|i| {
        pods.push(node.pod(&format!("c{r}-{i}"))?);
        signals::check()
    });
    let round = Round {
        node,
        chain: conf.chain,
        pods,
        next: AtomicUsize::new(0),
        live: Mutex::new(HashMap::new()),
        out: Mutex::new(ChurnRound::default()),
    };
    if made.is_ok() {
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..conf.workers {
                // Each worker inside the fake host, as a runtime's threads live in the host.
                s.spawn(|| {
                    if let Err(e) = node.host().run(|| worker(&round, conf.live_per_worker)) {
                        lock(&round.out).failures.push(format!("worker: {e}"));
                    }
                });
            }
        });
        lock(&round.out).wall = start.elapsed();
    }
    for pod in &round.pods {
        node.remove_pod(pod);
    }
    made?;
    signals::check()?;
    Ok(round.out.into_inner().unwrap_or_else(|p| p.into_inner()))
}

fn worker(round: &Round, keep: usize) {
    let mut mine: VecDeque<(usize, Vec<IpAddr>)> = VecDeque::new();
    while !signals::interrupted() {
        let i = round.next.fetch_add(1, Ordering::SeqCst);
        let Some(pod) = round.pods.get(i) else { break };
        if let Some(ips) = attach(round, i, pod) {
            mine.push_back((i, ips));
        }
        if mine.len() > keep
            && let Some((old, ips)) = mine.pop_front()
        {
            detach(round, old, &ips);
        }
    }
    while let Some((old, ips)) = mine.pop_front() {
        detach(round, old, &ips);
    }
}

/// ADD; records the pod's addresses as live, flagging any already held by a live pod.
fn attach(round: &Round, i: usize, pod: &Pod) -> Option<Vec<IpAddr>> {
    let rt = round.node.rt(pod, round.chain, host_port(i));
    let net = round.node.list(round.chain);
    let start = Instant::now();
    let added = round.node.runtime().add(net, &rt);
    let took = start.elapsed();
    match added {
        Ok(result) => {
            let ips: Vec<IpAddr> = result.ips.iter().map(|c| c.address.addr()).collect();
            let mut dups = Vec::new();
            {
                let mut live = lock(&round.live);
                for ip in &ips {
                    if let Some(holder) = live.insert(*ip, pod.id.clone()) {
                        dups.push(format!("{ip} given to {} while {holder} holds it", pod.id));
                    }
                }
            }
            let mut out = lock(&round.out);
            out.add.push(took);
            out.attached += 1;
            out.duplicates.extend(dups);
            Some(ips)
        }
        Err(e) => {
            lock(&round.out).failures.push(format!("ADD {}: {e}", pod.id));
            let _ = round.node.runtime().del(net, &rt);
            None
        }
    }
}

/// Forgets the pod's addresses (before DEL frees them), then DEL.
fn detach(round: &Round, i: usize, ips: &[IpAddr]) {
    let Some(pod) = round.pods.get(i) else { return };
    {
        let mut live = lock(&round.live);
        for ip in ips {
            if live.get(ip) == Some(&pod.id) {
                live.remove(ip);
            }
        }
    }
    let rt = round.node.rt(pod, round.chain, host_port(i));
    let start = Instant::now();
    let deleted = round.node.runtime().del(round.node.list(round.chain), &rt);
    let took = start.elapsed();
    let mut out = lock(&round.out);
    match deleted {
        Ok(()) => out.del.push(took),
        Err(e) => out.failures.push(format!("DEL {}: {e}", pod.id)),
    }
}

fn host_port(i: usize) -> u16 {
    20000 + (i % 40000) as u16
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
