//! Policy: NetworkPolicy at scale, twill against the classic rendering in the same run. For
//! 1, 100, 1,000 and 10,000 policies (3 peers × 2 ports each, see [`crate::policy_rules`])
//! it times twill's compile and its one-transaction apply (a netlink batch, what twilld does) and
//! the same policies as one iptables rule per peer and port (`iptables-restore`, the nft
//! flavour on this machine), then, with each in place, pod-to-pod throughput (iperf3) and
//! the time to open a new connection, which is where a linear rule chain costs. The two take
//! turns, the first alternating per round; a no-policy baseline is measured every round.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use policy::{Ruleset, apply_batch, compile, delete_batch};

use crate::lab::Lab;
use crate::policy_bed::Bed;
use crate::policy_rules::{build_world, classic_rules, iptables_restore};
use crate::signals;

/// An empty filter table: what removes the classic rules again.
const IPTABLES_EMPTY: &str =
    "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";

#[derive(Clone, Debug)]
pub struct PolicyConf {
    pub scales: Vec<usize>,
    pub rounds: usize,
    pub iperf_secs: u32,
    pub connect_span: Duration,
}

impl PolicyConf {
    pub fn new(quick: bool) -> PolicyConf {
        match quick {
            true => PolicyConf {
                scales: vec![1, 100, 1_000],
                rounds: 1,
                iperf_secs: 1,
                connect_span: Duration::from_millis(500),
            },
            false => PolicyConf {
                scales: vec![1, 100, 1_000, 10_000],
                rounds: 3,
                iperf_secs: 2,
                connect_span: Duration::from_secs(1),
            },
        }
    }
}

/// Samples of one implementation at one scale (or of the baseline).
#[derive(Clone, Debug, Default)]
pub struct Measure {
    /// twill: compile and render the batch; classic: render the restore file.
    pub build: Vec<Duration>,
    /// One netlink batch / iptables-restore.
    pub apply: Vec<Duration>,
    pub gbps: Vec<f64>,
    /// Median connect time of each round.
    pub connects: Vec<Duration>,
    pub error: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ScaleResult {
    pub policies: usize,
    pub sets: usize,
    pub elements: usize,
    pub classic_rules: usize,
    pub twill: Measure,
    pub classic: Measure,
}

#[derive(Clone, Debug)]
pub struct PolicyResult {
    pub conf: PolicyConf,
    pub baseline: Measure,
    pub scales: Vec<ScaleResult>,
}

pub fn run(lab: &Lab, quick: bool) -> Result<PolicyResult> {
    let conf = PolicyConf::new(quick);
    let bed = Bed::new(lab)?;
    let mut result = PolicyResult { conf: conf.clone(), baseline: Measure::default(), scales: Vec::new() };
    for (k, &n) in conf.scales.iter().enumerate() {
        let (world, pods) = build_world(n);
        let rs = compile(&world, &pods);
        let mut scale = ScaleResult {
            policies: n,
            sets: rs.sets.len(),
            elements: rs.element_count(),
            classic_rules: classic_rules(n),
            twill: Measure::default(),
            classic: Measure::default(),
        };
        for r in 0..conf.rounds {
            signals::check()?;
            sample(&bed, &conf, &mut result.baseline).context("baseline")?;
            let twill_first = (k + r) % 2 == 0;
            for twill in [twill_first, !twill_first] {
                let outcome = match twill {
                    true => twill_round(&bed, &conf, &world, &pods, &mut scale.twill),
                    false => classic_round(&bed, &conf, n, &mut scale.classic),
                };
                if let Err(e) = outcome {
                    let m = if twill { &mut scale.twill } else { &mut scale.classic };
                    m.error = Some(format!("{e:#}"));
                }
            }
        }
        eprintln!("  policy: {n} policies done");
        result.scales.push(scale);
    }
    Ok(result)
}

fn sample(bed: &Bed, conf: &PolicyConf, m: &mut Measure) -> Result<()> {
    m.gbps.push(bed.throughput(conf.iperf_secs)?);
    m.connects.push(bed.connect_time(conf.connect_span)?);
    Ok(())
}

/// Compile, apply in one transaction, measure, remove.
fn twill_round(
    bed: &Bed,
    conf: &PolicyConf,
    world: &policy::World,
    pods: &[policy::PodRef],
    m: &mut Measure,
) -> Result<()> {
    let started = Instant::now();
    let rs: Ruleset = compile(world, pods);
    let batch = apply_batch(&rs);
    m.build.push(started.elapsed());
    let mut conn = fw::nft::Conn::in_netns(&bed.node)?;
    let started = Instant::now();
    conn.apply(&batch)?;
    m.apply.push(started.elapsed());
    let outcome = sample(bed, conf, m);
    conn.apply(&delete_batch())?;
    outcome
}

/// One rule per peer and port, restored in one go, measured, flushed.
fn classic_round(bed: &Bed, conf: &PolicyConf, n: usize, m: &mut Measure) -> Result<()> {
    let started = Instant::now();
    let text = iptables_restore(n);
    m.build.push(started.elapsed());
    m.apply.push(bed.feed("iptables-restore", &[], &text)?);
    let outcome = sample(bed, conf, m);
    bed.feed("iptables-restore", &[], IPTABLES_EMPTY)?;
    outcome
}
