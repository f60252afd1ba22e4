//! Density: pods are added through the Kubernetes chain (each with its own hostPort) and kept
//! alive, up to 500; the ADD latency of the Nth pod shows how a plugin's cost grows with what
//! is already on the node. Then they are deleted newest first, which gives DEL latency at the
//! same live counts, and the node is checked for leftovers.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::chains::Chain;
use crate::inventory::{Inventory, Leftovers, settle};
use crate::lab::Lab;
use crate::node::{Node, Pod};
use crate::provision::{Impl, Provision, order};
use crate::signals;
use crate::stats::median_duration;

/// The live counts the report looks at (those not above the run's pod count).
pub const CHECKPOINTS: [usize; 4] = [1, 100, 250, 500];

/// One implementation's run.
#[derive(Clone, Debug, Default)]
pub struct DensitySide {
    /// `add[n-1]`: ADD of pod n, with n-1 pods alive.
    pub add: Vec<Duration>,
    /// `del[n-1]`: DEL of pod n, with n pods alive (itself included).
    pub del: Vec<Duration>,
    pub duplicates: Vec<String>,
    pub failures: Vec<String>,
    pub leftovers: Option<Leftovers>,
    /// Why the run stopped early, if it did.
    pub error: Option<String>,
}

#[derive(Clone, Debug)]
pub struct DensityResult {
    pub pods: usize,
    /// Samples on each side of a checkpoint in its window.
    pub half_window: usize,
    pub sides: BTreeMap<Impl, DensitySide>,
}

impl DensityResult {
    /// The checkpoints this run reached: the fixed ones up to `pods`, and `pods` itself.
    pub fn checkpoints(&self) -> Vec<usize> {
        checkpoints(self.pods)
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

/// Median of `samples` (pod n at index n-1) over the window around `center`.
pub fn window_median(samples: &[Duration], center: usize, half: usize) -> Option<Duration> {
    let (lo, hi) = window(center, half, samples.len())?;
    median_duration(&samples[lo - 1..hi])
}

pub fn run(lab: &Lab, prov: &Provision, pods: usize, half_window: usize) -> Result<DensityResult> {
    let chain = Chain::Kubernetes;
    let nodes = [Node::new(lab, prov, "dens", Impl::Twill)?, Node::new(lab, prov, "dens", Impl::Reference)?];
    let mut sides: BTreeMap<Impl, DensitySide> = BTreeMap::new();
    let mut baselines = BTreeMap::new();
    let mut alive: [Vec<Pod>; 2] = [Vec::new(), Vec::new()];
    let mut seen: [HashSet<IpAddr>; 2] = [HashSet::new(), HashSet::new()];
    for node in &nodes {
        match node.warm_up(chain, "dw")? {
            Ok(()) => drop(baselines.insert(node.imp, Inventory::take(node)?)),
            Err(e) => sides.entry(node.imp).or_default().error = Some(format!("warm-up pod: {e}")),
        }
    }
    for n in 1..=pods {
        signals::check()?;
        for imp in order(n) {
            let side = sides.entry(imp).or_default();
            if side.error.is_none() {
                add_one(
                    &nodes[imp.index()],
                    chain,
                    n,
                    side,
                    &mut alive[imp.index()],
                    &mut seen[imp.index()],
                )?;
            }
        }
        if n % 50 == 0 {
            eprintln!("  density: {n}/{pods} pods alive");
        }
    }
    let most = alive.iter().map(Vec::len).max().unwrap_or(0);
    for n in (1..=most).rev() {
        signals::check()?;
        for imp in order(n) {
            let Some(pod) = alive[imp.index()].pop() else { continue };
            del_one(&nodes[imp.index()], chain, n, &pod, sides.entry(imp).or_default());
        }
    }
    for node in &nodes {
        if let Some(base) = baselines.get(&node.imp) {
            sides.entry(node.imp).or_default().leftovers = Some(settle(node, base, Duration::from_secs(3))?);
        }
    }
    Ok(DensityResult { pods, half_window, sides })
}

fn add_one(
    node: &Node,
    chain: Chain,
    n: usize,
    side: &mut DensitySide,
    alive: &mut Vec<Pod>,
    seen: &mut HashSet<IpAddr>,
) -> Result<()> {
    let pod = node.pod(&format!("d{n}"))?;
    let rt = node.rt(&pod, chain, host_port(n));
    let start = Instant::now();
    let added = node.runtime().add(node.list(chain), &rt);
    let took = start.elapsed();
    node.take_runs();
    match added {
        Ok(result) => {
            side.add.push(took);
            for ip in result.ips.iter().map(|c| c.address.addr()) {
                if !seen.insert(ip) {
                    side.duplicates.push(format!("{ip} given to pod {n} while another live pod holds it"));
                }
            }
            alive.push(pod);
        }
        Err(e) => {
            side.error = Some(format!("ADD of pod {n}: {e}"));
            let _ = node.runtime().del(node.list(chain), &rt);
            node.remove_pod(&pod);
        }
    }
    Ok(())
}

fn del_one(node: &Node, chain: Chain, n: usize, pod: &Pod, side: &mut DensitySide) {
    let rt = node.rt(pod, chain, host_port(n));
    let start = Instant::now();
    let deleted = node.runtime().del(node.list(chain), &rt);
    let took = start.elapsed();
    node.take_runs();
    // A failed DEL still took its time; the failure is listed separately.
    if side.del.len() < n {
        side.del.resize(n, Duration::ZERO);
    }
    side.del[n - 1] = took;
    if let Err(e) = deleted {
        side.failures.push(format!("DEL of pod {n}: {e}"));
    }
    node.remove_pod(pod);
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
