//! The targets (issue 15's speed, floor, density, churn and memory goals; datapath and
//! hygiene from before), each with the number measured in this run and a verdict. A target is
//! only "met" or "missed" when the run measured exactly what it names; otherwise the row says
//! what is missing.

use std::fmt::Write as _;

use super::datapath::{gbps_1, gbps_4, median_of};
use super::{Report, table};
use crate::chains::{CHAINS, Chain};
use crate::datapath::{Sample, Target};
use crate::density::{sparse_window_median, window_median};
use crate::provision::Impl;
use crate::stats::{median_duration, ms, ratio_value};

/// The pod count the density target names.
const DENSITY_TARGET_PODS: usize = 500;

pub struct Row {
    pub goal: String,
    pub measured: String,
    pub verdict: String,
}

pub fn verdict(met: bool) -> String {
    if met { "**met**".into() } else { "**missed**".into() }
}

pub fn not_measured(goal: String, why: &str) -> Row {
    Row { goal, measured: why.to_string(), verdict: "not measured".into() }
}

pub fn render(report: &Report, out: &mut String) {
    let mut rows = vec![add_speed(report, Chain::Minimal, 5.0), add_speed(report, Chain::Kubernetes, 10.0)];
    rows.extend(CHAINS.iter().map(|c| super::goals::del_floor(report, *c)));
    rows.push(density(report));
    rows.push(super::goals::churn(report));
    rows.push(super::goals::memory(report));
    rows.push(super::goals::guard_cost(report));
    rows.extend(datapath(report));
    rows.extend(hygiene(report));
    rows.extend(multus(report));
    let _ = writeln!(out, "## Targets\n");
    let cells = rows.into_iter().map(|r| vec![r.goal, r.measured, r.verdict]).collect();
    table(out, &["target", "measured in this run", "verdict"], cells);
}

fn add_speed(report: &Report, chain: Chain, goal_x: f64) -> Row {
    let goal = format!("{} chain: ADD ≥ {goal_x:.0}x faster than the reference (p50)", chain.short());
    let Some(l) = &report.latency else { return not_measured(goal, "latency part not run") };
    let med = |imp| l.series.get(&(imp, chain)).and_then(|s| median_duration(&s.add));
    let (Some(t), Some(r)) = (med(Impl::Twill), med(Impl::Reference)) else {
        return not_measured(goal, "a side failed: see the latency section");
    };
    let x = r.as_secs_f64() / t.as_secs_f64();
    let measured = format!("{x:.2}x (twill {}, reference {})", ms(t), ms(r));
    let borrowed = report.borrowed(chain);
    if !borrowed.is_empty() {
        let why = format!("{measured}; twill's side borrows the reference {}", borrowed.join(", "));
        return Row { goal, measured: why, verdict: "not measured (mixed chain)".into() };
    }
    Row { goal, measured, verdict: verdict(x >= goal_x) }
}

fn density(report: &Report) -> Row {
    let goal = format!("ADD at the {DENSITY_TARGET_PODS}th live pod within 1.2x of the 1st (twill)");
    let Some(d) = &report.density else { return not_measured(goal, "density part not run") };
    let Some(side) = d.sides.get(&Impl::Twill) else { return not_measured(goal, "no twill run") };
    let reached = side.add.len();
    let last = d.checkpoints().last().copied().unwrap_or(0).min(reached);
    let at = |n| window_median(&side.add, n, d.conf.half_window);
    let (Some(first), Some(nth)) = (at(1), at(last)) else {
        return not_measured(goal, side.error.as_deref().unwrap_or("no samples"));
    };
    let growth = nth.as_secs_f64() / first.as_secs_f64();
    let mut measured = format!("{growth:.2}x at pod {last} ({} vs {})", ms(nth), ms(first));
    let floor = |n| sparse_window_median(&d.veth_add, n, d.conf.half_window, d.conf.pods);
    if let (Some(f), Some(l)) = (floor(1), floor(last)) {
        let kernel = l.as_secs_f64() / f.as_secs_f64();
        measured += &format!("; the kernel's veth pair create alone: {kernel:.2}x ({} vs {})", ms(l), ms(f));
    }
    let borrowed = report.borrowed(Chain::Kubernetes);
    if last < DENSITY_TARGET_PODS {
        return Row {
            goal,
            measured: format!("{measured}; the run reached only {last} pods"),
            verdict: "not measured".into(),
        };
    }
    if !borrowed.is_empty() {
        let why = format!("{measured}; twill's side borrows the reference {}", borrowed.join(", "));
        return Row { goal, measured: why, verdict: "not measured (mixed chain)".into() };
    }
    Row { goal, measured, verdict: verdict(growth <= 1.2) }
}

fn datapath(report: &Report) -> Vec<Row> {
    [("1 stream", gbps_1 as fn(&Sample) -> f64), ("4 streams", gbps_4)]
        .into_iter()
        .map(|(label, pick)| {
            let goal = format!("pod-to-pod throughput ≥ 0.95 of the veth floor, {label} (twill)");
            let Some(d) = &report.datapath else { return not_measured(goal, "datapath part not run") };
            let floor = median_of(d.paths.get(&Target::Floor), pick);
            let tw = median_of(d.paths.get(&Target::Impl(Impl::Twill)), pick);
            let (Some(f), Some(t), Some(x)) = (floor, tw, ratio_value(tw, floor)) else {
                return not_measured(goal, "a path failed: see the datapath section");
            };
            Row { goal, measured: format!("{x:.2} ({t:.1} vs {f:.1} Gbit/s)"), verdict: verdict(x >= 0.95) }
        })
        .collect()
}

/// multus's overhead over its delegates, with either side's delegates.
fn multus(report: &Report) -> Vec<Row> {
    [Impl::Twill, Impl::Reference]
        .into_iter()
        .map(|d| {
            let goal = format!(
                "multus: ADD+DEL with the cluster network and two secondaries ≤ {:.1}x the sum of the delegates alone (p50; {})",
                super::multus::TARGET,
                super::multus::delegates_label(d)
            );
            let Some(m) = &report.multus else { return not_measured(goal, "multus part not run") };
            let Some(s) = m.series.get(&d) else { return not_measured(goal, "no run") };
            let Some(x) = super::multus::overhead(s) else {
                return not_measured(goal, "a side failed: see the multus section");
            };
            let (mm, aa) = (median_duration(&s.multus), median_duration(&s.alone));
            let measured = format!("{x:.2}x (multus {}, alone {})", mm.map(ms).unwrap_or_default(), aa.map(ms).unwrap_or_default());
            Row { goal, measured, verdict: verdict(x <= super::multus::TARGET) }
        })
        .collect()
}

/// Zero leftovers and zero duplicate addresses, over churn and density.
fn hygiene(report: &Report) -> Vec<Row> {
    let churn = report.churn.as_ref().and_then(|c| c.sides.get(&Impl::Twill));
    let dens = report.density.as_ref().and_then(|d| d.sides.get(&Impl::Twill));
    if churn.is_none() && dens.is_none() {
        return vec![
            not_measured("zero leaks (twill)".into(), "churn and density parts not run"),
            not_measured("zero duplicate IPs (twill)".into(), "churn and density parts not run"),
        ];
    }
    let mut leaks = Vec::new();
    let mut dups = Vec::new();
    let mut counted = true;
    if let Some(c) = churn {
        let left = c.leftovers.as_ref();
        counted &= left.is_some();
        leaks.push(format!("churn: {}", left.map(|l| l.describe()).unwrap_or("not counted".into())));
        dups.push(format!("churn: {}", c.rounds.iter().map(|r| r.duplicates.len()).sum::<usize>()));
    }
    if let Some(d) = dens {
        counted &= d.leftovers.is_some();
        leaks.push(format!(
            "density: {}",
            d.leftovers.as_ref().map(|l| l.describe()).unwrap_or("not counted".into())
        ));
        dups.push(format!("density: {}", d.duplicates.len()));
    }
    let leak_total: usize =
        churn.iter().filter_map(|c| c.leftovers.as_ref()).map(|l| l.total()).sum::<usize>()
            + dens.iter().filter_map(|d| d.leftovers.as_ref()).map(|l| l.total()).sum::<usize>();
    let dup_total: usize = churn.iter().flat_map(|c| &c.rounds).map(|r| r.duplicates.len()).sum::<usize>()
        + dens.map(|d| d.duplicates.len()).unwrap_or(0);
    let leak_verdict = if counted { verdict(leak_total == 0) } else { "not measured".into() };
    vec![
        Row {
            goal: "zero leaks after churn and density (twill)".into(),
            measured: leaks.join("; "),
            verdict: leak_verdict,
        },
        Row {
            goal: "zero duplicate IPs among live pods (twill)".into(),
            measured: dups.join("; "),
            verdict: verdict(dup_total == 0),
        },
    ]
}
