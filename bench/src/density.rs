//! Density: pods are added through the Kubernetes chain (each with its own hostPort) and kept
//! alive, up to 500; the ADD latency of the Nth pod shows how a plugin's cost grows with what
//! is already on the node. Teardown times the DEL of the newest pods (all others alive) and of
//! the last few, deletes the ones between with concurrent workers (untimed, to keep the run
//! short), and checks the node for leftovers.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::chains::Chain;
use crate::floors;
use crate::inventory::{Inventory, Leftovers, settle};
use crate::lab::Lab;
use crate::node::{Node, PluginRun, Pod};
use crate::provision::{Impl, Provision, order};
use crate::signals;
use crate::stats::median_duration;

/// The live counts the report looks at (those not above the run's pod count).
pub const CHECKPOINTS: [usize; 4] = [1, 100, 250, 500];

#[derive(Clone, Copy, Debug)]
pub struct DensityConf {
    pub pods: usize,
    /// Pods on each side of a checkpoint in its window.
    pub half_window: usize,
    /// Concurrent workers for the untimed part of the teardown.
    pub workers: usize,
}

/// One implementation's run.
#[derive(Clone, Debug, Default)]
pub struct DensitySide {
    /// `add[n-1]`: ADD of pod n, with n-1 pods alive.
    pub add: Vec<Duration>,
    /// `add_runs[n-1]`: each plugin process of that ADD.
    pub add_runs: Vec<Vec<PluginRun>>,
    /// DEL of the newest pods, newest first, all others still alive.
    pub del_top: Vec<Duration>,
    /// DEL of the oldest pods, last, with only a few alive.
    pub del_bottom: Vec<Duration>,
    pub duplicates: Vec<String>,
    pub failures: Vec<String>,
    pub leftovers: Option<Leftovers>,
    /// Why the run stopped early, if it did.
    pub error: Option<String>,
}

#[derive(Clone, Debug)]
pub struct DensityResult {
    pub conf: DensityConf,
    pub sides: BTreeMap<Impl, DensitySide>,
    /// The kernel's veth-pair floor in twill's node with n-1 pods alive, for each n inside a
    /// checkpoint's window (`(n, time)`).
    pub veth_add: Vec<(usize, Duration)>,
}

impl DensityResult {
    /// The checkpoints this run reached: the fixed ones up to `pods`, and `pods` itself.
    pub fn checkpoints(&self) -> Vec<usize> {
        checkpoints(self.conf.pods)
    }
}

pub fn checkpoints(pods: usize) -> Vec<usize> {
    let mut points: Vec<usize> = CHECKPOINTS.iter().copied().filter(|p| *p <= pods).collect();
    if pods > 0 && points.last() != Some(&pods) {
        points.push(pods);
    }
    points
}

/// The 1-based pod range `[lo, hi]` of the window around `center`: `2*half+1` pods, shifted
/// to stay inside `1..=len`.
pub fn window(center: usize, half: usize, len: usize) -> Option<(usize, usize)> {
    if center == 0 || center > len {
        return None;
    }
    let width = (2 * half + 1).min(len);
    let lo = center.saturating_sub(half).max(1).min(len + 1 - width);
    Some((lo, lo + width - 1))
}

/// Median of the `(n, time)` samples whose n lies in the window around `center`.
pub fn sparse_window_median(
    samples: &[(usize, Duration)],
    center: usize,
    half: usize,
    len: usize,
) -> Option<Duration> {
    let (lo, hi) = window(center, half, len)?;
    let inside: Vec<Duration> =
        samples.iter().filter(|(n, _)| (lo..=hi).contains(n)).map(|(_, d)| *d).collect();
    median_duration(&inside)
}

/// Median of `samples` (pod n at index n-1) over the window around `center`.
pub fn window_median(samples: &[Duration], center: usize, half: usize) -> Option<Duration> {
    let (lo, hi) = window(center, half, samples.len())?;
    median_duration(&samples[lo - 1..hi])
}

/// Per node: its pods alive (oldest first, with their number) and the addresses they hold.
#[derive(Default)]
struct Live {
    pods: Vec<(usize, Pod)>,
    seen: HashSet<IpAddr>,
}

pub fn run(lab: &Lab, prov: &Provision, conf: DensityConf) -> Result<DensityResult> {
    let chain = Chain::Kubernetes;
    let nodes = [Node::new(lab, prov, "dens", Impl::Twill)?, Node::new(lab, prov, "dens", Impl::Reference)?];
    let mut sides: BTreeMap<Impl, DensitySide> = BTreeMap::new();
    let mut baselines = BTreeMap::new();
    for node in &nodes {
        match node.warm_up(chain, "dw")? {
            Ok(()) => drop(baselines.insert(node.imp, Inventory::take(node)?)),
            Err(e) => sides.entry(node.imp).or_default().error = Some(format!("warm-up pod: {e}")),
        }
    }
    let mut live: [Live; 2] = Default::default();
    let mut veth_add = Vec::new();
    let (floor_pod_name, floor_pod) = lab.create_ns("floor-dens")?;
    let start = Instant::now();
    // One node after the other: RTNL is one lock for every namespace, and the kernel's work
    // that follows an ADD by a second or more (the new links' IPv6 DAD, MLD and router
    // solicitations, sent under that lock and flooded through the node's bridge to every pod)
    // would otherwise land in the other side's ADDs.
    for imp in [Impl::Twill, Impl::Reference] {
        for n in 1..=conf.pods {
            signals::check()?;
            let side = sides.entry(imp).or_default();
            if side.error.is_some() {
                break;
            }
            if in_a_window(n, conf) {
                if imp == Impl::Twill {
                    // The node as pod n's ADD finds it: n-1 pods alive.
                    veth_add.push((n, floors::veth_add_in(nodes[imp.index()].host(), &floor_pod)?));
                }
                std::thread::sleep(SETTLE);
            }
            add_one(&nodes[imp.index()], chain, n, side, &mut live[imp.index()])?;
            if n % 50 == 0 {
                progress(imp, n, conf.pods, start, side);
            }
        }
    }
    lab.remove_ns(&floor_pod_name);
    teardown(&nodes, chain, conf, &mut sides, live)?;
    for node in &nodes {
        if let Some(base) = baselines.get(&node.imp) {
            sides.entry(node.imp).or_default().leftovers = Some(settle(node, base, Duration::from_secs(3))?);
        }
    }
    Ok(DensityResult { conf, sides, veth_add })
}

/// The pause before each ADD of a window: the kernel finishes the deferred work of what ran
/// before (RCU callbacks, nf_tables freeing a replaced ruleset), half the time the other
/// implementation's ADD, instead of doing it during the ADD being timed.
const SETTLE: Duration = Duration::from_millis(50);

/// Whether pod `n` falls in a checkpoint's window.
fn in_a_window(n: usize, conf: DensityConf) -> bool {
    let within =
        |c: &usize| window(*c, conf.half_window, conf.pods).is_some_and(|(lo, hi)| (lo..=hi).contains(&n));
    checkpoints(conf.pods).iter().any(within)
}

/// `density: twill 100/500 pods alive after 42 s (ADD time so far 5 s)`.
fn progress(imp: Impl, n: usize, pods: usize, start: Instant, side: &DensitySide) {
    eprintln!(
        "  density: {} {n}/{pods} pods alive after {:.0} s (ADD time so far {:.0} s)",
        imp.label(),
        start.elapsed().as_secs_f64(),
        side.add.iter().sum::<Duration>().as_secs_f64()
    );
}

fn add_one(node: &Node, chain: Chain, n: usize, side: &mut DensitySide, live: &mut Live) -> Result<()> {
    let pod = node.pod(&format!("d{n}"))?;
    let rt = node.rt(&pod, chain, host_port(n));
    node.take_runs();
    // Timed on a thread inside the fake host, as in the latency part.
    let (added, took) = node.host().run(|| {
        let start = Instant::now();
        let added = node.runtime().add(node.list(chain), &rt);
        (added, start.elapsed())
    })?;
    match added {
        Ok(result) => {
            side.add.push(took);
            side.add_runs.push(node.take_runs());
            for ip in result.ips.iter().map(|c| c.address.addr()) {
                if !live.seen.insert(ip) {
                    side.duplicates.push(format!("{ip} given to pod {n} while another live pod holds it"));
                }
            }
            live.pods.push((n, pod));
        }
        Err(e) => {
            side.error = Some(format!("ADD of pod {n}: {e}"));
            let _ = node.runtime().del(node.list(chain), &rt);
            node.remove_pod(&pod);
        }
    }
    Ok(())
}

/// Timed DELs of the newest window, untimed concurrent DELs down to one window, timed DELs of
/// the rest; the implementation going first alternates for the timed ones.
fn teardown(
    nodes: &[Node; 2],
    chain: Chain,
    conf: DensityConf,
    sides: &mut BTreeMap<Impl, DensitySide>,
    mut live: [Live; 2],
) -> Result<()> {
    let width = 2 * conf.half_window + 1;
    for (i, top) in [true, false].into_iter().enumerate() {
        if !top {
            let middles = live.each_mut().map(|l| {
                let keep = width.min(l.pods.len());
                l.pods.split_off(keep)
            });
            eprintln!("  density: deleting all but {width} pods with {} workers per node", conf.workers);
            delete_concurrently(nodes, chain, conf.workers, sides, middles);
        }
        for k in 0..width {
            signals::check()?;
            for imp in order(i + k) {
                let Some((n, pod)) = live[imp.index()].pods.pop() else { continue };
                let side = sides.entry(imp).or_default();
                let took = del_one(&nodes[imp.index()], chain, n, &pod, side);
                if top { side.del_top.push(took) } else { side.del_bottom.push(took) }
            }
        }
    }
    Ok(())
}

/// Deletes `pods` of both nodes at once, `workers` threads per node.
fn delete_concurrently(
    nodes: &[Node; 2],
    chain: Chain,
    workers: usize,
    sides: &mut BTreeMap<Impl, DensitySide>,
    pods: [Vec<(usize, Pod)>; 2],
) {
    let queues = pods.map(Mutex::new);
    let failures: [Mutex<Vec<String>>; 2] = Default::default();
    std::thread::scope(|s| {
        for (i, node) in nodes.iter().enumerate() {
            for _ in 0..workers.max(1) {
                let (queue, failed) = (&queues[i], &failures[i]);
                s.spawn(move || {
                    while let Some((n, pod)) = next(queue) {
                        let rt = node.rt(&pod, chain, host_port(n));
                        if let Err(e) = node.runtime().del(node.list(chain), &rt) {
                            lock(failed).push(format!("DEL of pod {n}: {e}"));
                        }
                        node.remove_pod(&pod);
                    }
                });
            }
        }
    });
    for (node, failed) in nodes.iter().zip(failures) {
        let failed = failed.into_inner().unwrap_or_else(|p| p.into_inner());
        sides.entry(node.imp).or_default().failures.extend(failed);
    }
}

/// The next pod to delete, unless interrupted (the lab removes what is left).
fn next(queue: &Mutex<Vec<(usize, Pod)>>) -> Option<(usize, Pod)> {
    if signals::interrupted() { None } else { lock(queue).pop() }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One timed DEL; a failed DEL still took its time and is listed separately.
fn del_one(node: &Node, chain: Chain, n: usize, pod: &Pod, side: &mut DensitySide) -> Duration {
    let rt = node.rt(pod, chain, host_port(n));
    let start = Instant::now();
    let deleted = node.runtime().del(node.list(chain), &rt);
    let took = start.elapsed();
    node.take_runs();
    if let Err(e) = deleted {
        side.failures.push(format!("DEL of pod {n}: {e}"));
    }
    node.remove_pod(pod);
    took
}

fn host_port(n: usize) -> u16 {
    20000 + (n % 40000) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_follow_the_pod_count() {
        assert_eq!(checkpoints(500), vec![1, 100, 250, 500]);
        assert_eq!(checkpoints(60), vec![1, 60]);
        assert_eq!(checkpoints(300), vec![1, 100, 250, 300]);
        assert!(checkpoints(0).is_empty());
    }

    #[test]
    fn the_floor_is_sampled_in_windows_only() {
        let conf = DensityConf { pods: 500, half_window: 5, workers: 4 };
        let sampled: Vec<usize> = (1..=500).filter(|n| in_a_window(*n, conf)).collect();
        assert_eq!(sampled.len(), 44);
        assert!(
            sampled.contains(&1) && sampled.contains(&95) && sampled.contains(&500) && !sampled.contains(&50)
        );
        let samples: Vec<(usize, Duration)> =
            (490..=500).map(|n| (n, Duration::from_millis(n as u64))).collect();
        assert_eq!(sparse_window_median(&samples, 500, 5, 500), Some(Duration::from_millis(495)));
        assert_eq!(sparse_window_median(&samples, 1, 5, 500), None);
    }

    #[test]
    fn windows_stay_inside() {
        assert_eq!(window(1, 5, 500), Some((1, 11)));
        assert_eq!(window(100, 5, 500), Some((95, 105)));
        assert_eq!(window(500, 5, 500), Some((490, 500)));
        assert_eq!(window(3, 5, 4), Some((1, 4)));
        assert_eq!(window(501, 5, 500), None);
        let samples: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        assert_eq!(window_median(&samples, 20, 2), Some(Duration::from_millis(18)));
    }
}
