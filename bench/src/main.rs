//! `twill-bench`: twill's CNI plugins against the reference Go plugins, side by side and
//! interleaved in one run, each in its own fake host network namespace. See bench/README.md.

mod attrib;
mod chains;
mod churn;
mod datapath;
mod density;
mod floors;
mod flows;
mod flows_report;
mod inventory;
mod ipam_bench;
mod ipam_report;
mod lab;
mod latency;
mod machine;
mod memory;
mod meter;
mod multus;
mod node;
mod policy;
mod policy_bed;
mod policy_report;
mod policy_rules;
mod provision;
mod report;
mod settings;
mod signals;
mod stats;
mod strace_split;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use crate::lab::Lab;
use crate::provision::Provision;
use crate::report::Report;
use crate::settings::Settings;

#[derive(Parser)]
#[command(
    name = "twill-bench",
    version,
    about = "twill's CNI plugins against the reference plugins, side by side"
)]
struct Cli {
    #[command(subcommand)]
    part: Part,
    /// Write the Markdown report to this file (default: standard output).
    #[arg(long, global = true)]
    out: Option<PathBuf>,
    /// A short smoke run (fewer iterations, pods and seconds).
    #[arg(long, global = true)]
    quick: bool,
    /// Latency: measured iterations (each: one pod per implementation and chain).
    #[arg(long, global = true)]
    iterations: Option<usize>,
    /// Churn: concurrent workers.
    #[arg(long, global = true)]
    workers: Option<usize>,
    /// Churn: pods per round and implementation.
    #[arg(long, global = true)]
    churn_pods: Option<usize>,
    /// Churn: rounds (the implementation going first alternates).
    #[arg(long, global = true)]
    churn_rounds: Option<usize>,
    /// Density: pods kept alive at the end.
    #[arg(long, global = true)]
    density_pods: Option<usize>,
    /// Datapath: seconds per iperf3 run.
    #[arg(long, global = true)]
    datapath_secs: Option<u32>,
    /// Datapath: rounds (the path going first rotates).
    #[arg(long, global = true)]
    datapath_rounds: Option<usize>,
    /// Memory: plugin runs per implementation.
    #[arg(long, global = true)]
    memory_runs: Option<usize>,
    /// Attribution: traced pods per chain.
    #[arg(long, global = true)]
    attrib_pods: Option<usize>,
    /// IPAM: addresses allocated per round and target.
    #[arg(long, global = true)]
    ipam_allocs: Option<usize>,
    /// IPAM: rounds (the target going first rotates).
    #[arg(long, global = true)]
    ipam_rounds: Option<usize>,
    /// IPAM: concurrent workers per node of the 3-node targets (3x that on one node for host-local).
    #[arg(long, global = true)]
    ipam_workers: Option<usize>,
    /// Directory holding the built `twill` and `twill-cni` (default: next to twill-bench).
    #[arg(long, global = true)]
    twill_dir: Option<PathBuf>,
    /// Directory of the reference plugins.
    #[arg(long, global = true, default_value = "/usr/lib/cni")]
    reference_dir: PathBuf,
}

#[derive(Subcommand, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Every part below, in one run.
    All,
    /// Per-verb ADD/CHECK/DEL latency of the minimal and Kubernetes chains.
    Latency,
    /// Concurrent create/delete: pods/s, duplicate IPs, leftovers.
    Churn,
    /// ADD latency of the 1st..500th live pod.
    Density,
    /// Pod-to-pod iperf3 throughput and ping RTT against a bare veth pair.
    Datapath,
    /// Peak RSS of one plugin run.
    Memory,
    /// Where twill's plugin time goes (each plugin run traced with strace).
    Attrib,
    /// Multi-network pods: multus against the sum of its delegates run alone.
    Multus,
    /// NetworkPolicy at 1..10,000 policies: twill's nftables table against iptables rules.
    Policy,
    /// Cluster-wide IPAM (whereabouts, 3 nodes) against host-local on one node.
    Ipam,
    /// Connection rate and throughput through the policy table with flow logs off, denied, all.
    Flows,
    /// Remove namespaces and scratch dirs left by bench runs that were killed.
    Cleanup,
}

fn main() {
    if let Some(code) = meter::launch_from_args() {
        std::process::exit(code);
    }
    let cli = Cli::parse();
    if let Err(e) = signals::install() {
        eprintln!("twill-bench: {e:#}");
        std::process::exit(1);
    }
    let code = match run(&cli) {
        Ok(()) => 0,
        Err(e) if signals::interrupted() => {
            eprintln!("twill-bench: interrupted; everything the bench created has been removed ({e:#})");
            130
        }
        Err(e) => {
            eprintln!("twill-bench: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn run(cli: &Cli) -> Result<()> {
    preflight()?;
    if cli.part == Part::Cleanup {
        let removed = lab::sweep_stale()?;
        eprintln!("twill-bench: removed {} stale namespaces", removed.len());
        return Ok(());
    }
    let settings = settings(cli);
    let started = Instant::now();
    let lab = Lab::new()?;
    let twill_dir = match &cli.twill_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?.parent().context("directory of twill-bench")?.to_path_buf(),
    };
    let prov = Provision::prepare(&twill_dir, &cli.reference_dir, lab.dir())?;
    eprintln!(
        "twill-bench: twill provides {:?}; the rest of its chains come from the reference",
        prov.twill_names()
    );
    let mut report = Report::new(settings, &prov, workspace(&twill_dir));
    let all = cli.part == Part::All;
    let wanted = |p: Part| all || cli.part == p;
    if wanted(Part::Latency) {
        eprintln!("twill-bench: latency ({} iterations)", settings.iterations);
        report.latency =
            part(&mut report, "latency", || latency::run(&lab, &prov, settings.iterations, settings.warmup))?;
    }
    if wanted(Part::Churn) {
        let c = settings.churn();
        eprintln!("twill-bench: churn ({} workers, {} pods x {} rounds)", c.workers, c.pods, c.rounds);
        report.churn = part(&mut report, "churn", || churn::run(&lab, &prov, c))?;
    }
    if wanted(Part::Density) {
        eprintln!("twill-bench: density ({} pods)", settings.density_pods);
        report.density = part(&mut report, "density", || density::run(&lab, &prov, settings.density()))?;
    }
    if wanted(Part::Datapath) {
        eprintln!("twill-bench: datapath ({} s per run)", settings.datapath_secs);
        report.datapath = part(&mut report, "datapath", || datapath::run(&lab, &prov, settings.datapath()))?;
    }
    if wanted(Part::Memory) {
        eprintln!("twill-bench: memory ({} runs)", settings.memory_runs);
        report.memory = part(&mut report, "memory", || memory::run(&lab, &prov, settings.memory_runs))?;
    }
    if wanted(Part::Attrib) {
        eprintln!("twill-bench: attribution ({} traced pods per chain)", settings.attrib_pods);
        report.attrib = part(&mut report, "attribution", || attrib::run(&lab, &prov, settings.attrib_pods))?;
    }
    if wanted(Part::Multus) {
        eprintln!("twill-bench: multus ({} iterations)", settings.iterations);
        report.multus =
            part(&mut report, "multus", || multus::run(&lab, &prov, settings.iterations, settings.warmup))?;
    }
    let policy = match wanted(Part::Policy) {
        true => part(&mut report, "policy", || policy::run(&lab, cli.quick))?,
        false => None,
    };
    let ipam = match wanted(Part::Ipam) {
        true => {
            let conf = ipam_conf(cli);
            eprintln!("twill-bench: ipam ({} allocations x {} rounds)", conf.allocs, conf.rounds);
            part(&mut report, "ipam", || ipam_bench::run(&lab, &prov, conf))?
        }
        false => None,
    };
    let flows = match wanted(Part::Flows) {
        true => part(&mut report, "flows", || flows::run(&lab, cli.quick))?,
        false => None,
    };
    drop(lab);
    report.elapsed = started.elapsed();
    report.load_end = machine::loadavg();
    let policy = policy.map(|p| policy_report::render(&p)).unwrap_or_default();
    let ipam = ipam.map(|i| ipam_report::render(&i)).unwrap_or_default();
    let flows = flows.map(|f| flows_report::render(&f)).unwrap_or_default();
    write(&(report.render() + &policy + &ipam + &flows), cli.out.as_deref())
}

/// A part that failed outright is reported and the run goes on; Ctrl-C stops everything.
fn part<T>(report: &mut Report, name: &'static str, run: impl FnOnce() -> Result<T>) -> Result<Option<T>> {
    let started = Instant::now();
    let outcome = run();
    report.part_times.push((name, started.elapsed()));
    match outcome {
        Ok(r) => Ok(Some(r)),
        Err(e) if signals::interrupted() => Err(e),
        Err(e) => {
            eprintln!("twill-bench: {name} failed: {e:#}");
            report.failed_parts.push((name, format!("{e:#}")));
            Ok(None)
        }
    }
}

fn preflight() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("must run as root: it creates network namespaces (sudo target/release/twill-bench ...)");
    }
    Ok(())
}

fn settings(cli: &Cli) -> Settings {
    let mut s = if cli.quick { Settings::quick() } else { Settings::full() };
    s.iterations = cli.iterations.unwrap_or(s.iterations);
    s.workers = cli.workers.unwrap_or(s.workers);
    s.churn_pods = cli.churn_pods.unwrap_or(s.churn_pods);
    s.churn_rounds = cli.churn_rounds.unwrap_or(s.churn_rounds);
    s.density_pods = cli.density_pods.unwrap_or(s.density_pods);
    s.datapath_secs = cli.datapath_secs.unwrap_or(s.datapath_secs);
    s.datapath_rounds = cli.datapath_rounds.unwrap_or(s.datapath_rounds);
    s.memory_runs = cli.memory_runs.unwrap_or(s.memory_runs);
    s.attrib_pods = cli.attrib_pods.unwrap_or(s.attrib_pods);
    s
}

fn ipam_conf(cli: &Cli) -> ipam_bench::IpamConf {
    let (allocs, rounds, workers) = if cli.quick { (60, 1, 4) } else { (150, 3, 8) };
    ipam_bench::IpamConf {
        allocs: cli.ipam_allocs.unwrap_or(allocs).clamp(1, 250),
        rounds: cli.ipam_rounds.unwrap_or(rounds).max(1),
        workers_per_node: cli.ipam_workers.unwrap_or(workers).max(1),
    }
}

/// The workspace root for `git describe`: two levels above target/release.
fn workspace(twill_dir: &Path) -> PathBuf {
    twill_dir.ancestors().nth(2).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn write(markdown: &str, out: Option<&Path>) -> Result<()> {
    match out {
        Some(path) => {
            std::fs::write(path, markdown).with_context(|| format!("write {}", path.display()))?;
            eprintln!("twill-bench: wrote {}", path.display());
        }
        None => print!("{markdown}"),
    }
    Ok(())
}
